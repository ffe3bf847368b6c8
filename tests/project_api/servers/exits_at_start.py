"""Broken on purpose: dies before reading any request (an import error in a vendor server)."""

import sys

sys.stderr.write("Traceback (most recent call last):\nModuleNotFoundError: No module named 'vendor_sdk'\n")
sys.exit(4)
