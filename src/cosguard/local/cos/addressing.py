"""Where a request to the local COS is addressed: bucket, region and key, from any client's form.

Three forms reach the same object, so any COS client works without DNS changes:

- virtual host: `Host: <bucket>.cos.<region>.myqcloud.com` on a request to 127.0.0.1:PORT
  (cos-python-sdk-v5 with `IP`/`Port`, cos-nodejs-sdk-v5 with `Ip`, curl with `-H Host:`);
- the same through an HTTP proxy: an absolute-form request line
  `PUT http://<bucket>.cos.<region>.myqcloud.com/key HTTP/1.1` (coscmd and any client with
  `http_proxy=http://127.0.0.1:PORT`; werkzeug copies the URL's host into `Host`);
- path style: `http://127.0.0.1:PORT/<bucket>/<key>`, any other Host.

A client signs the path it believes it is requesting. Virtual-host clients sign `/<key>`; a
path-style client either signs the full `/<bucket>/<key>` or, like cos-nodejs-sdk-v5 given
`Domain: '127.0.0.1:PORT/{Bucket}'`, just `/<key>`: `signed_paths` lists both, and a signature
that verifies against either is accepted. A `/<key>` signature binds the bucket only through a
signed Host header, exactly as a virtual-host signature does on COS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple
from urllib.parse import unquote

from ..httpserver import raw_request_path
from .naming import parse_host


@dataclass(frozen=True)
class Address:
    """The bucket, region (None unless the Host names one) and decoded key a request is for."""

    bucket: str
    region: Optional[str]
    key: str
    raw_path: str          # the percent-encoded path as it arrived, never an absolute URL
    path_style: bool

    def signed_paths(self) -> Tuple[str, ...]:
        """The raw paths a client may have signed for this request, the literal one first."""
        if not self.path_style or not self.bucket:
            return (self.raw_path,)
        rest = self.raw_path[1:].partition("/")[2]
        return (self.raw_path, "/" + rest)


def resolve(environ: Dict[str, Any], host: str) -> Address:
    """The address of a WSGI request whose (lower-cased) Host header is `host`."""
    raw_path = raw_request_path(environ)
    virtual = parse_host(host)
    if virtual:
        (bucket, region) = virtual
        return Address(bucket, region, unquote(raw_path[1:]), raw_path, path_style=False)
    first, _, rest = raw_path[1:].partition("/")
    return Address(unquote(first), None, unquote(rest), raw_path, path_style=True)
