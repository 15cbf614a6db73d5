"""Reading a TUF repository over HTTP or from a folder, and talking to the device API.

    http_pool(connect, read)              one connection pool set-up (http)
    SourceFetcher / CountingFetcher       python-tuf ngclient fetchers (fetcher)
    RepositoryUrl                         metadata_url / targets_url of a base URL (urls)
    open_on_card / read_metadata          a card read without following links (card)
    classify_tuf_error / network_reason   python-tuf's exceptions by meaning (reasons)
    signed_releases / full_releases       the releases a targets role signs (releases)
    DeviceApiClient                       enroll, check in, send reports and receipts
                                          (device_api_client; blocking, urllib3)
    AsyncDeviceApiClient                  the same calls for asyncio (device_api_async,
                                          httpx); both speak device_api_protocol

This package imports only ``patchline.wire``, ``errors``, ``clock`` and ``fsutil``
from Patchline, so the agent, the mirror, the repository and a simulated fleet can
all stand on it.
"""
