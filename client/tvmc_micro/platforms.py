"""The platforms `tvmc micro create-project` knows by name (kept import-light for argument parsing)."""

BUILTIN_PLATFORMS = ("crt_host", "cortex_m", "zephyr")
# tvmc v0.18 names for the same templates, accepted so old command lines run.
PLATFORM_ALIASES = {"crt": "crt_host"}
# `template` is any third-party template directory, given with --template-dir.
PLATFORM_CHOICES = (*BUILTIN_PLATFORMS, *PLATFORM_ALIASES, "template")


def canonical_platform(name: str) -> str:
    """The template name for a platform as typed (`crt` → `crt_host`)."""
    return PLATFORM_ALIASES.get(name, name)
