"""``patchline swu``: SWUpdate images for makers that have no build for them."""

from __future__ import annotations

from pathlib import Path

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.repository.swu_image import SwuSpec, build_swu, write_test_certificate

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def swu() -> None:
    """SWUpdate images (.swu), signed for SWUpdate's -k check."""


@swu.command("build")
@click.argument("image", type=_FILE)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", required=True, help="The build it installs.")
@click.option("--device", required=True, help="The partition SWUpdate writes it to.")
@click.option("--key", required=True, type=_FILE, help="The signing key (PEM).")
@click.option("--cert", required=True, type=_FILE, help="The signing certificate (PEM).")
@click.option(
    "--hardware",
    multiple=True,
    default=("1.0",),
    show_default=True,
    help="A hardware revision it installs on (repeatable).",
)
@pass_cli
def build_command(
    cli: CliContext,
    image: Path,
    out: Path,
    version: str,
    device: str,
    key: Path,
    cert: Path,
    hardware: tuple[str, ...],
) -> None:
    """Make a signed .swu that writes raw IMAGE to --device: sw-description with the
    image's sha256, its CMS signature by --key and --cert, and the image. Publish it as
    a release's image like any other (`patchline release add ... OUT.swu`)."""
    spec = SwuSpec(image=image, version=version, device=device, hardware=hardware)
    digest = build_swu(spec, out, key, cert)
    cli.console.print(f"Wrote {out} (sha256 {digest}).")


@swu.command("test-certificate")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="Patchline test signer", show_default=True)
@pass_cli
def test_certificate_command(cli: CliContext, directory: Path, name: str) -> None:
    """Write a self-signed signing certificate and key to DIRECTORY (signing.crt,
    signing.key) for trials: give SWUpdate the certificate with -k. A fleet's key
    belongs in the maker's own PKI."""
    cert, key = write_test_certificate(directory, name)
    cli.console.print(f"Wrote {cert} and {key}.")
