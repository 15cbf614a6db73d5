"""The device agent: find an update, verify it, download it, install it, boot it, report.

One ``Agent.update()`` run: check in with the director when the device has one; then
try each source in order (SD card / USB bundles, the server's repository, mirrors) with
one full TUF refresh each, recording why each failed; download the chosen update with
resume into the inactive slot, verify it, install it (a delta falls back to the full
image), simulate the reboot, run the health check, and commit or roll back. Every step
is reported; reports wait on disk until the server acknowledges them.
"""

from __future__ import annotations

import random
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import msgspec
import urllib3
from tuf.api.metadata import TargetFile

from patchline.agent.bundle import OfflineBundle, is_signed_bundle, open_bundle
from patchline.agent.choose import Facts, Plan, plan_update
from patchline.agent.device import DeviceConfig, DeviceDir
from patchline.agent.device_key import device_key
from patchline.agent.director_client import verified_decision
from patchline.agent.outcome import Attempt, UpdateResult, code_for, nothing_installed, tried
from patchline.agent.real_boot import finish_boot, install_to_partition, running_slot
from patchline.agent.receipts import ReceiptBox
from patchline.agent.reports import Outbox, new_report
from patchline.agent.server_wait import backed_off, cleared, not_asked, waiting_until
from patchline.agent.slots import BootOutcome, boot, install_delta, install_image
from patchline.agent.sources import Source, SourceKind, sources_in_order
from patchline.agent.state import AgentState, PendingDownload, SlotContent, load_state, save_state
from patchline.agent.transfer import download_verified, opener_for
from patchline.agent.trust import VerifiedSource, refresh_source
from patchline.clock import Clock
from patchline.errors import (
    DeltaError,
    DeviceSetupError,
    DirectorRefusedError,
    DowngradeError,
    NotEligibleError,
    PatchlineError,
    RolledBackError,
    ServerBusyError,
    SourceError,
)
from patchline.transport.device_api_client import DeviceApiClient
from patchline.transport.fetcher import Pace, SourceFetcher
from patchline.transport.http import http_pool
from patchline.wire.device_api import CheckIn, Network, ReportCode, ReportStatus, SlotState
from patchline.wire.director import DirectorDecision
from patchline.wire.receipt import Receipt


@dataclass
class _Run:
    """What one update run has learnt so far."""

    config: DeviceConfig
    state: AgentState
    attempts: list[Attempt] = field(default_factory=list)
    decision: DirectorDecision | None = None
    decision_mirrors: list[str] = field(default_factory=list)
    up_to_date_at: str = ""
    #: The server asked the device to wait: it is not asked again this run.
    server_waiting: bool = False


class Agent:
    """The update agent of one simulated device directory."""

    def __init__(
        self,
        device: DeviceDir,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        on_progress: Callable[[str, int, int], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.device = device
        self.clock = clock
        #: Draws the jitter of the wait after a busy server (``server_wait``).
        self.rng = rng if rng is not None else random.Random()
        self.monotonic = monotonic
        self.on_progress = on_progress
        self.outbox = Outbox(device.outbox)
        self.receipts = ReceiptBox(device.path / "receipts", lambda: device_key(device))

    def update(self) -> UpdateResult:
        """Find, verify, install and boot the newest update this device may take.

        Returns how it ended (installed, or up to date). Raises NoUpdateSourceError or
        UpdateRefusedError (with every source tried and why), RolledBackError (the new
        build failed its health check; the old build runs), InstallFailedError,
        DeviceSetupError or DeviceBusyError.
        """
        with self.device.locked():
            config = self.device.load_config()
            pool = http_pool(config.limits.connect_timeout_seconds, _read_timeout(config))
            try:
                state = self._finish_trial_boot(config, load_state(self.device))
                if config.boot is not None and state.trial is not None:
                    return _waiting_for_reboot(state)
                return self._update(_Run(config, state), pool)
            finally:
                self._send_reports(config, pool)

    def reboot(self) -> BootOutcome:
        """Simulate a reboot now (finishing an interrupted install), and report it.

        Raises DeviceSetupError on a device that boots for real (see ``started``)."""
        with self.device.locked():
            config = self.device.load_config()
            if config.boot is not None:
                raise DeviceSetupError(
                    f"{self.device.path} boots for real: its reboots are not simulated",
                    hint="reboot the device; `patchline agent boot` settles the boot at start-up",
                )
            state, outcome = boot(self.device, load_state(self.device), config)
            self._queue_boot_report(state)
            return outcome

    def started(self, cmdline: str | None = None) -> BootOutcome:
        """On a device that boots for real, at start-up: settle the boot of the slot the
        kernel ``cmdline`` names (read from the configured file, /proc/cmdline, when
        None): commit a healthy trial, or report the fallback the bootloader took.

        Raises DeviceSetupError when the device is not set up for real boots."""
        with self.device.locked():
            config = self.device.load_config()
            setup = config.boot
            if setup is None:
                raise DeviceSetupError(
                    f"{self.device.path} is a simulated device (device.json has no boot setup)",
                    hint="use `patchline agent boot` without --cmdline to simulate a reboot",
                )
            if cmdline is None:
                try:
                    cmdline = Path(setup.cmdline).read_text(errors="replace")
                except OSError as exc:
                    raise DeviceSetupError(
                        f"cannot read the kernel command line from {setup.cmdline}: {exc.strerror}"
                    ) from None
            # A report left waiting by a power cut after the last boot's end goes first.
            state = self._queue_boot_report(load_state(self.device))
            state, outcome = finish_boot(
                self.device, state, config, setup, running_slot(setup, cmdline)
            )
            self._queue_boot_report(state)
            pool = http_pool(config.limits.connect_timeout_seconds, _read_timeout(config))
            self._send_reports(config, pool)
            return outcome

    def send_reports(self) -> int:
        """Send queued reports now; return how many the server acknowledged."""
        config = self.device.load_config()
        pool = http_pool(config.limits.connect_timeout_seconds, _read_timeout(config))
        if not config.server_url:
            return 0
        sent = self.outbox.send(pool, config.server_url, config.credential)
        self.receipts.send(pool, config.server_url, config.credential)
        return sent

    # --- one run --------------------------------------------------------------------

    def _update(self, run: _Run, pool: urllib3.PoolManager) -> UpdateResult:
        self._check_in(run, pool)
        sources = sources_in_order(
            bundles=run.config.bundles,
            server_repository=run.config.server_repository_url,
            decision_mirrors=run.decision_mirrors,
            configured_mirrors=run.config.mirrors,
            last_mirrors=run.state.last_mirrors,
        )
        if run.server_waiting:
            sources = self._without_server(run, sources)
        limits = run.config.limits
        pace = Pace(limits.min_bytes_per_second, limits.grace_seconds, limits.deadline_seconds)
        fetcher = SourceFetcher(pool, pace=pace, monotonic=self.monotonic)
        bootstrap = self.device.read_shipped_root()
        for source in sources:
            try:
                repo = self._open_source(run, source, fetcher, bootstrap)
                plan = plan_update(repo, self._facts(run), run.decision)
            except SourceError as exc:
                offered = isinstance(exc, NotEligibleError | DowngradeError | DirectorRefusedError)
                run.attempts.append(Attempt(source.label, exc.message, code_for(exc), offered))
                continue
            if plan is None:
                run.up_to_date_at = source.label
                break
            try:
                return self._install(run, repo, plan, pool)
            except SourceError as exc:
                run.attempts.append(Attempt(source.label, exc.message, code_for(exc), True))
                self._report_failure(run, plan, source, exc)
        running = run.state.running
        if run.up_to_date_at:
            also = f" Also tried: {tried(run.attempts)}" if run.attempts else ""
            return UpdateResult(
                "up-to-date",
                running.build,
                f"Up to date: build {running.build} is the newest this device may install "
                f"(checked {run.up_to_date_at}).{also}",
                tuple(run.attempts),
                run.up_to_date_at,
            )
        error = nothing_installed(
            run.attempts, run.config.model, running.build, running.security_patch_level
        )
        self._queue(
            target="",
            build=running.build,
            status=ReportStatus.FAILED,
            code=run.attempts[0].code if run.attempts else ReportCode.NO_SOURCE,
            detail=error.message,
        )
        raise error

    @staticmethod
    def _without_server(run: _Run, sources: list[Source]) -> list[Source]:
        """The sources but the server's repository, which is not asked while the server
        asked the device to wait (the bundles and mirrors still are, in order)."""
        kept = []
        for source in sources:
            if source.kind is SourceKind.SERVER:
                run.attempts.append(
                    Attempt(source.label, not_asked(run.state), ReportCode.NO_SOURCE)
                )
            else:
                kept.append(source)
        return kept

    def _open_source(
        self, run: _Run, source: Source, fetcher: SourceFetcher, bootstrap: bytes
    ) -> VerifiedSource:
        """A signed offline bundle is verified offline; anything else by a TUF refresh."""
        now = self.clock.now()
        if source.kind is SourceKind.BUNDLE and is_signed_bundle(Path(source.location)):
            return open_bundle(
                source,
                bootstrap,
                self._trusted_root_version(),
                run.config.model,
                now,
                self._trusted_versions(run.config.model),
            )
        if source.kind is SourceKind.BUNDLE:
            fetcher = fetcher.on_card(Path(source.location))
        return refresh_source(self.device.metadata_dir, source, fetcher, bootstrap, now)

    def _trusted_versions(self, model: str) -> dict[str, int]:
        """The versions of the targets roles this device has trusted from online sources."""
        found = {}
        roles = ["targets", model, f"{model}.archive"]
        archive_bins = self.device.metadata_dir.glob(f"{quote(model, safe='')}.archive-*.json")
        roles += sorted(unquote(p.name.removesuffix(".json")) for p in archive_bins)
        for role in roles:
            version = _cached_version(self.device.metadata_dir / f"{quote(role, safe='')}.json")
            if version:
                found[role] = version
        return found

    def _trusted_root_version(self) -> int:
        return _cached_version(self.device.metadata_dir / "root.json")

    def _check_in(self, run: _Run, pool: urllib3.PoolManager) -> None:
        config, state = run.config, run.state
        if not config.server_url:
            return
        label = f"Server {config.server_url}"
        if not config.credential:
            run.attempts.append(
                Attempt(label, "the device is not enrolled (no credential)", ReportCode.NO_SOURCE)
            )
            return
        if waiting_until(state, self.clock.now()) is not None:
            run.server_waiting = True
            run.attempts.append(Attempt(label, not_asked(state), ReportCode.NO_SOURCE))
            return
        body = CheckIn(
            build=state.running.build,
            build_sha256=state.running.sha256,
            security_patch_level=state.running.security_patch_level,
            slot=SlotState(
                active=state.active,
                inactive_build=(
                    state.slots[state.inactive.value].build
                    if state.inactive.value in state.slots
                    else None
                ),
            ),
            free_bytes=shutil.disk_usage(self.device.path).free,
            battery_percent=config.battery_percent,
            network=Network(config.network),
            region=config.region,
        )
        try:
            answer = DeviceApiClient(pool, config.server_url).check_in(config.credential, body)
            if not self.device.director_root.exists():
                raise DirectorRefusedError("the device has no director root to verify answers")
            decision = verified_decision(
                answer,
                self.device.director_root.read_bytes(),
                device_id=config.device_id,
                now=self.clock.now(),
                last_version=state.last_director_version,
            )
        except ServerBusyError as exc:
            run.state = backed_off(state, exc, self.clock.now(), self.rng)
            save_state(self.device, run.state)
            run.server_waiting = True
            run.attempts.append(Attempt(label, not_asked(run.state), code_for(exc)))
            return
        except SourceError as exc:
            run.attempts.append(Attempt(label, exc.message, code_for(exc)))
            return
        run.decision = decision
        run.decision_mirrors = list(answer.mirrors)
        run.state = msgspec.structs.replace(
            cleared(state),
            last_director_version=decision.version,
            last_mirrors=list(answer.mirrors),
        )
        save_state(self.device, run.state)

    def _facts(self, run: _Run) -> Facts:
        return Facts(
            config=run.config,
            running=run.state.running,
            today=self.clock.now().date(),
            refused_builds=frozenset(run.state.refused_builds),
        )

    # --- download, install, boot ------------------------------------------------------

    def _install(
        self, run: _Run, repo: VerifiedSource, plan: Plan, pool: urllib3.PoolManager
    ) -> UpdateResult:
        source = repo.source
        from_build = run.state.running.build
        content = SlotContent(
            build=plan.info.build,
            sha256=plan.full.hashes["sha256"],
            security_patch_level=plan.info.security_patch_level.isoformat(),
            target=plan.full.path,
        )
        installed = False
        delta_note = ""
        if run.config.boot is not None:
            return self._install_for_real_boot(run, repo, plan, content, pool)
        if plan.delta is not None:
            patch = self.device.path / f"slot_{run.state.inactive.value}.delta.part"
            try:
                self._download(run, repo, plan.delta, patch, pool)
                run.state = install_delta(
                    self.device,
                    run.state,
                    patch,
                    content,
                    plan.full.length,
                    run.config.boot_attempts,
                    source.label,
                )
                installed = True
            except (SourceError, DeltaError) as exc:
                patch.unlink(missing_ok=True)
                run.state = load_state(self.device)
                delta_note = f" The delta failed ({exc.message}); the full image was used."
                self._queue(
                    target=plan.delta.path,
                    build=plan.info.build,
                    status=ReportStatus.FAILED,
                    code=ReportCode.SOURCE_CHANGED
                    if isinstance(exc, DeltaError)
                    else code_for(exc),
                    detail=f"delta failed, falling back to the full image: {exc.message}",
                    source=source.label,
                    delta=True,
                )
        if not installed:
            staging = self.device.staging_file(run.state.inactive)
            self._download(run, repo, plan.full, staging, pool)
            run.state = install_image(
                self.device, run.state, staging, content, run.config.boot_attempts, source.label
            )
        used_delta = installed
        self._queue(
            target=plan.full.path,
            build=plan.info.build,
            status=ReportStatus.INSTALLED,
            source=source.label,
            delta=used_delta,
        )
        run.state, outcome = boot(self.device, run.state, run.config)
        run.state = self._queue_boot_report(run.state)
        if outcome.result != "committed":
            raise RolledBackError(
                f"Build {plan.info.build} was installed from {source.label} but did not boot "
                f"healthy: {outcome.reason}. The device went back to build {outcome.build}.",
                hint="nothing to do on the device; the failure was reported to the maker, "
                "and this build will not be tried again",
            )
        if isinstance(repo, OfflineBundle):
            self._keep_receipt(run, repo, plan, from_build, used_delta)
        return UpdateResult(
            "installed",
            plan.info.build,
            f"Installed build {plan.info.build} (security patch level "
            f"{plan.info.security_patch_level}, {plan.info.update_class.value}) from "
            f"{source.label}{' as a delta' if used_delta else ''}; it booted healthy and is "
            f"now running.{delta_note}",
            tuple(run.attempts),
            source.label,
        )

    def _install_for_real_boot(
        self,
        run: _Run,
        repo: VerifiedSource,
        plan: Plan,
        content: SlotContent,
        pool: urllib3.PoolManager,
    ) -> UpdateResult:
        """Full image into the inactive partition, trial armed; the reboot is the
        device's (a delta needs the active slot as a file: not on real partitions)."""
        assert run.config.boot is not None
        source = repo.source
        staging = self.device.staging_file(run.state.inactive)
        self._download(run, repo, plan.full, staging, pool)
        run.state = install_to_partition(
            self.device,
            run.state,
            run.config.boot,
            staging,
            content,
            run.config.boot_attempts,
            source.label,
        )
        self._queue(
            target=plan.full.path,
            build=plan.info.build,
            status=ReportStatus.INSTALLED,
            source=source.label,
        )
        return UpdateResult(
            "installed",
            plan.info.build,
            f"Installed build {plan.info.build} into slot {run.state.inactive.value} from "
            f"{source.label}; reboot to try it (the bootloader goes back to build "
            f"{run.state.running.build} by itself if it does not come up healthy).",
            tuple(run.attempts),
            source.label,
        )

    def _download(
        self,
        run: _Run,
        repo: VerifiedSource,
        target: TargetFile,
        staging: Path,
        pool: urllib3.PoolManager,
    ) -> None:
        sha = target.hashes.get("sha256", "")
        pending = run.state.pending
        if pending is None or pending.sha256 != sha or pending.target != target.path:
            staging.unlink(missing_ok=True)
        run.state = msgspec.structs.replace(
            run.state,
            pending=PendingDownload(target.path, sha, target.length, repo.source.label),
        )
        save_state(self.device, run.state)
        self._queue(
            target=target.path,
            build=run_build(target),
            status=ReportStatus.DOWNLOADING,
            source=repo.source.label,
        )
        url = repo.target_url(target)
        on_card = repo.source.kind is SourceKind.BUNDLE
        card = Path(repo.source.location).absolute() if on_card else None

        def progress(done: int) -> None:
            if self.on_progress is not None:
                self.on_progress(target.path, done, target.length)

        download_verified(
            opener_for(url, pool, card),
            url,
            target,
            staging,
            run.config.limits,
            monotonic=self.monotonic,
            on_progress=progress if self.on_progress else None,
        )

    def _finish_trial_boot(self, config: DeviceConfig, state: AgentState) -> AgentState:
        """A trial armed by an interrupted run boots now, before anything new is tried
        (on a device that boots for real, `patchline agent boot` settles it at start-up)."""
        state = self._queue_boot_report(state)
        if config.boot is not None:
            return state
        if state.trial is None:
            return state
        state, outcome = boot(self.device, state, config)
        state = self._queue_boot_report(state)
        if outcome.result == "rolled-back":
            raise RolledBackError(
                f"Build {outcome.tried_build} did not boot healthy: {outcome.reason}. "
                f"The device went back to build {outcome.build}.",
                hint="nothing to do on the device; the failure was reported to the maker",
            )
        return state

    # --- reports --------------------------------------------------------------------

    def _keep_receipt(
        self, run: _Run, bundle: OfflineBundle, plan: Plan, from_build: str, delta: bool
    ) -> None:
        """Sign and keep a receipt of an offline install with the device key (an enrolled
        device only: the receipt names its device id)."""
        device_id, sep, secret = run.config.credential.partition(".")
        if not sep or not secret:
            return
        receipt = Receipt(
            receipt_id=str(uuid.uuid4()),
            device_id=device_id,
            bundle_id=bundle.bundle_id,
            bundle_version=bundle.version,
            model=run.config.model,
            build=plan.info.build,
            from_build=from_build,
            target=plan.full.path,
            sha256=plan.full.hashes["sha256"],
            security_patch_level=plan.info.security_patch_level.isoformat(),
            installed_at=self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            delta=delta,
        )
        self.receipts.add(receipt, device_key(self.device))

    def _queue_boot_report(self, state: AgentState) -> AgentState:
        """Queue the report of a simulated trial boot that ended (once, under the id
        saved with its commit or rollback), then forget it; the state as saved."""
        ended = state.unreported_boot
        if ended is None:
            return state
        committed = ended.result == "committed"
        never_finished = ended.boot_failed or "never finished" in ended.reason
        self._queue(
            target=state.running.target if committed else "",
            build=ended.build if committed or ended.tried_build == "?" else ended.tried_build,
            status=ReportStatus.BOOTED_HEALTHY if committed else ReportStatus.ROLLED_BACK,
            code=(
                ReportCode.NONE
                if committed
                else ReportCode.BOOT_FAILED
                if never_finished
                else ReportCode.HEALTH_CHECK_FAILED
            ),
            detail="" if committed else f"{ended.reason}; running build {ended.build} again",
            source=ended.source,
            delta=ended.delta,
            report_id=ended.report_id,
        )
        state = msgspec.structs.replace(state, unreported_boot=None)
        save_state(self.device, state)
        return state

    def _report_failure(self, run: _Run, plan: Plan, source: Source, exc: PatchlineError) -> None:
        self._queue(
            target=plan.full.path,
            build=plan.info.build,
            status=ReportStatus.FAILED,
            code=code_for(exc),
            detail=f"{source.label}: {exc.message}",
            source=source.label,
        )

    def _queue(
        self,
        *,
        target: str,
        build: str,
        status: ReportStatus,
        code: ReportCode = ReportCode.NONE,
        detail: str = "",
        source: str = "",
        delta: bool = False,
        report_id: str = "",
    ) -> None:
        self.outbox.add(
            new_report(
                target=target,
                build=build or "unknown",
                status=status,
                at=self.clock.now(),
                code=code,
                detail=detail,
                source=source,
                delta=delta,
                report_id=report_id,
            )
        )

    def _send_reports(self, config: DeviceConfig, pool: urllib3.PoolManager) -> None:
        """Send what is queued, unless the server asked the device to wait (then they
        stay queued); a busy answer makes it wait, an answer clears the wait."""
        if not config.server_url or not config.credential:
            return
        state = load_state(self.device)
        if waiting_until(state, self.clock.now()) is not None:
            return
        answered = 0
        for send in (self.outbox.send, self.receipts.send):
            try:
                answered += send(pool, config.server_url, config.credential)
            except ServerBusyError as exc:  # they stay queued; the server is left alone
                save_state(self.device, backed_off(state, exc, self.clock.now(), self.rng))
                return
            except SourceError:
                continue  # they stay queued for the next run
        if answered and state.server_backoff is not None:
            save_state(self.device, cleared(state))


def _waiting_for_reboot(state: AgentState) -> UpdateResult:
    trial = state.trial
    assert trial is not None
    build = state.slots[trial.slot.value].build if trial.slot.value in state.slots else "?"
    return UpdateResult(
        "installed",
        build,
        f"Build {build} is installed in slot {trial.slot.value} and waits for a reboot to "
        "be tried; nothing else is installed before then.",
        (),
        trial.source,
    )


def _read_timeout(config: DeviceConfig) -> float:
    return max(config.limits.grace_seconds, 2.0)


def run_build(target: TargetFile) -> str:
    """The build a target belongs to (its signed custom field), or "unknown"."""
    custom = target.unrecognized_fields.get("custom")
    build = custom.get("build") if isinstance(custom, dict) else None
    return build if isinstance(build, str) else "unknown"


def _cached_version(path: Path) -> int:
    """The version of the metadata file cached at ``path`` (0 when absent or unreadable)."""
    try:
        version = msgspec.json.decode(path.read_bytes())["signed"]["version"]
    except (OSError, msgspec.DecodeError, KeyError, TypeError):
        return 0
    return version if isinstance(version, int) else 0
