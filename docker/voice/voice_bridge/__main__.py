"""python -m voice_bridge: the bridge configured by its VOICE_* environment variables."""

import logging
import sys

from aiohttp import web

from .app import Bridge
from .config import ConfigError, from_env


def main() -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        config = from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    web.run_app(Bridge(config).app(), host=config.host, port=config.port, print=None, access_log=None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
