"""mkdocs hooks: the site also serves the repository files the docs link to outside `docs/`.

A page in `docs/` links `../deploy/README.md` so that the link works where most people read it (on
the repository's web page or in a checkout). The site has no `../`: here each such file (and what it
links to in turn) is added under `repo/` and the links are rewritten to it, so `mkdocs build
--strict` still fails on a link to a file that does not exist.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Optional

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent
REPO = "repo/"  # where repository files live on the site
LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")


def _site_uri(page_uri: str, url: str) -> Optional[str]:
    """The site path a relative link on `page_uri` points to, when it leaves docs/; else None."""
    if "://" in url or url.startswith(("/", "mailto:")):
        return None
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page_uri), url))
    if page_uri.startswith(REPO) and resolved.startswith(REPO):
        repo_path = resolved[len(REPO):]
    elif not page_uri.startswith(REPO) and resolved.startswith("../") and not resolved.startswith("../../"):
        repo_path = resolved[len("../"):]
    else:
        return None
    if repo_path.startswith("docs/"):  # a repository file linking back into the docs
        return repo_path[len("docs/"):]
    return REPO + repo_path


def on_files(files, config):
    pending = [f for f in files.documentation_pages()]
    while pending:
        page = pending.pop()
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            target = _site_uri(page.src_uri, match.group(1))
            if target is None or not target.startswith(REPO) or files.get_file_from_path(target):
                continue
            source = ROOT / target[len(REPO):]
            if not source.is_file():
                continue  # left as it is: the build reports the broken link
            added = File.generated(config, target, abs_src_path=str(source))
            files.append(added)
            if added.is_documentation_page():
                pending.append(added)
    return files


def on_page_markdown(markdown, page, config, files):
    base = posixpath.dirname(page.file.src_uri)

    def rewrite(match):
        target = _site_uri(page.file.src_uri, match.group(1))
        if target is None:
            return match.group(0)
        return "](" + posixpath.relpath(target, base or ".") + (match.group(2) or "") + ")"

    return LINK.sub(rewrite, markdown)
