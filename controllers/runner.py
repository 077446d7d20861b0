"""Start the cpn_net os-ken application (os-ken ships no manager command).

``python -m controllers.runner --run-dir /run/cpn --ofp-port 6653`` or ``cpn controller``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

DEFAULT_OFP_PORT = 6653


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the cpn_net os-ken controller.")
    parser.add_argument("--run-dir", default=None, help="directory holding manifest.json")
    parser.add_argument("--ofp-host", default="127.0.0.1")
    parser.add_argument("--ofp-port", type=int, default=DEFAULT_OFP_PORT)
    args = parser.parse_args(argv)
    if args.run_dir:
        os.environ["CPN_RUN_DIR"] = args.run_dir
    os.environ.setdefault("CPN_RUN_DIR", "/run/cpn")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    cfg.CONF(args=["--ofp-listen-host", args.ofp_host, "--ofp-tcp-listen-port", str(args.ofp_port)],
             project="os_ken")
    AppManager.run_apps(["controllers.cpn_controller"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
