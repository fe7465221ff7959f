"""``python -m gateway.webhooks [options]``: run a webhook dispatcher in the foreground.

The same as ``voicegw webhooks dispatch``; the database comes from
``GATEWAY_DATABASE_URL`` (or the config file). Stops on SIGTERM or SIGINT.
"""
from gateway import _monkey  # noqa: F401  (first: gevent-patch the standard library)

import sys  # noqa: E402

from gateway.webhooks.cli import dispatch_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(dispatch_main(sys.argv[1:]))
