"""`arena --version`: the installed package's version, and the commit when run from a git checkout."""

from __future__ import annotations


def version_line() -> str:
    """``arena 0.1.0``, then ``(commit 1a2b3c4d5e6f)`` from a checkout, ``+ uncommitted changes`` when it has some."""
    # The bundle's software record asks git (offline, a few milliseconds) and loads the stats layer; only here.
    from app.stats.bundle.documentation import software_info

    software = software_info()
    line = f"arena {software['version'] or 'unknown (not installed)'}"
    if software["git_commit"]:
        changes = ", uncommitted changes" if software["git_uncommitted_changes"] else ""
        line += f" (commit {software['git_commit'][:12]}{changes})"
    return line
