"""The platforms `tvmc micro create-project` knows by name (kept import-light for argument parsing)."""

BUILTIN_PLATFORMS = ("crt_host", "cortex_m", "zephyr")
# `template` is any third-party template directory, given with --template-dir.
PLATFORM_CHOICES = (*BUILTIN_PLATFORMS, "template")
