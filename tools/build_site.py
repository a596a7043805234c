"""Build the course website from the stored, executed notebooks, without executing any of them.

    python tools/build_site.py [--out _build/site] [--repo-url URL] [--branch BRANCH]

``make site`` runs it. Steps:

1. A staging folder (``_build/site-src``) is assembled: the pages of ``website/`` with their
   ``<!-- README: ## Section -->`` lines replaced by that section of the README (so the site and the
   README never disagree), ``DATA_LICENSES.md``, and copies of ``notebooks/*.ipynb`` and
   ``exercises/*.ipynb`` (the same folder names as in the repository, so the theme's repository
   and launch buttons point at the right files).
2. In each staged notebook an "Open in Colab" line goes under the title, relative links to files of
   the repository that are not pages of the site are pointed at the repository, and tqdm progress
   bars whose stored text is only their first frame ("0%") are left out (their live state is never
   saved, so the text is wrong, never informative). Nothing else is changed: outputs are shown as
   stored, and a live view shows its PNG fallback (``website/conf.py``). The download button of a
   page hands out the notebook exactly as it is in the repository.
3. Sphinx (myst-nb, sphinx-book-theme) renders the staging folder into ``--out``; a warning fails
   the build.

The repository URL (``--repo-url``, or ``COURSE_REPO_URL``; default a placeholder) must be a
GitHub URL: Colab opens notebooks by their GitHub path.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER_REPO_URL = "https://github.com/OWNER/unet-course"
NOTEBOOK_FOLDERS = ("notebooks", "exercises")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TQDM_FIRST_FRAME = re.compile(r"^[^\n]*\b0%\|[^\n]*\| 0/\d+ \[")
README_MARKER = re.compile(r"^<!-- README: (.+?) -->$", re.MULTILINE)
MARKDOWN_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


@dataclass(frozen=True)
class Repository:
    """Where the course lives on GitHub: for the Colab links and the theme's repository button."""

    url: str
    branch: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", self.url):
            raise ValueError(
                f"the repository URL must look like https://github.com/OWNER/NAME (Colab opens "
                f"notebooks by their GitHub path), got {self.url!r}; set COURSE_REPO_URL or --repo-url")
        if not self.branch or any(c.isspace() for c in self.branch):
            raise ValueError(f"the branch must be a non-empty name without spaces, got {self.branch!r}")

    def colab_url(self, path: str) -> str:
        """Colab's URL for the notebook at ``path`` (relative to the repository root)."""
        return f"https://colab.research.google.com/github/{self.url.removeprefix('https://github.com/')}/blob/{self.branch}/{path}"

    def file_url(self, path: str) -> str:
        return f"{self.url}/blob/{self.branch}/{path}"


@dataclass(frozen=True)
class SiteReport:
    seconds: float
    size_bytes: int
    html_pages: int
    out: Path


def readme_sections(text: str) -> dict[str, str]:
    """The README by headings: ``{"## Glossary": body, ...}`` (bodies without the heading line),
    and ``"intro"``: the text between the title and the first ``##`` heading."""
    sections, current, lines = {}, "intro", []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and re.match(r"^#{1,3} ", line):
            sections[current] = "\n".join(lines).strip()
            current, lines = ("intro" if line.startswith("# ") else line.strip()), []
            continue
        lines.append(line)
    sections[current] = "\n".join(lines).strip()
    return sections


def point_links(markdown: str, here: str, pages: set[str], repo: Repository) -> str:
    """Relative links in ``markdown`` (a page at ``here``, relative to the root) to files that are
    not ``pages`` of the site become links to the repository; ``#anchors`` of the README stay
    anchors of the README on the repository page."""
    folder = Path(here).parent

    def replace(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            return match.group(0)
        path, _, anchor = target.partition("#")
        if not path:  # an anchor of the README itself
            return f"{match.group(1)}{repo.file_url('README.md')}#{anchor}{match.group(3)}"
        resolved = os.path.normpath(folder / path).replace(os.sep, "/")
        if resolved in pages:
            return match.group(0)
        suffix = f"#{anchor}" if anchor else ""
        return f"{match.group(1)}{repo.file_url(resolved)}{suffix}{match.group(3)}"

    return MARKDOWN_LINK.sub(replace, markdown)


def link_notebook_names(markdown: str, notebooks: dict[str, str], titles: dict[str, str], here: str) -> str:
    """A notebook's stem in backticks (```01_segmentation_tasks```, as the README's tables name
    them) becomes a link to its page, titled as the notebook is."""
    folder = Path(here).parent
    for stem, path in notebooks.items():
        relative = os.path.relpath(path, folder).replace(os.sep, "/")
        markdown = markdown.replace(f"`{stem}`", f"[{titles[path]}]({relative})")
    return markdown


def fill_readme_markers(page: str, sections: dict[str, str], source: Path) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in sections:
            raise ValueError(f"{source.name}: the README has no section {name!r} (it has {sorted(sections)}); "
                             f"rename the marker or the README heading")
        return sections[name]
    return README_MARKER.sub(replace, page)


def notebook_title(notebook: dict) -> str:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError("a notebook on the site needs a '# title' line in a markdown cell")


def is_stale_progress_bar(output: dict) -> bool:
    data = output.get("data", {})
    return (output.get("output_type") == "display_data" and set(data) == {WIDGET_VIEW, "text/plain"}
            and bool(TQDM_FIRST_FRAME.match("".join(data["text/plain"]))))


def stage_notebook(source: Path, relative: str, pages: set[str], repo: Repository) -> dict:
    """The notebook as the site shows it (see the module docstring, step 2)."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    download = f"../_sources/{relative}"  # where Sphinx puts a page's source; build() copies the original there
    launch = (f'<p class="course-launch"><a class="colab-link" href="{repo.colab_url(relative)}">Open in Colab</a>'
              f' &middot; <a class="download-link" href="{download}" download>Download the notebook</a>'
              f' (to open it in JupyterLab: <code>make lab</code> in a clone of the course)</p>')
    placed = False
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = point_links("".join(cell["source"]), relative, pages, repo)
            if not placed and text.startswith("# "):
                title, _, rest = text.partition("\n")
                text, placed = f"{title}\n\n{launch}\n\n{rest.lstrip()}", True
            cell["source"] = text
        elif cell["cell_type"] == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if not is_stale_progress_bar(o)]
    if not placed:
        raise ValueError(f"{relative}: the first markdown cell must start with a '# title' line")
    return notebook


def stage(staging: Path, repo: Repository, root: Path = ROOT) -> list[str]:
    """Assemble the Sphinx source folder; return the staged pages (paths relative to it)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    notebooks = {folder: sorted((root / folder).glob("*.ipynb")) for folder in NOTEBOOK_FOLDERS}
    if not notebooks["notebooks"]:
        raise ValueError(f"no lessons found in {root / 'notebooks'}")
    stems = {p.stem: f"{folder}/{p.name}" for folder, paths in notebooks.items() for p in paths}
    hand_written = sorted((root / "website").glob("*.md"))
    pages = {*stems.values(), *(p.name for p in hand_written), "DATA_LICENSES.md"}
    sections = readme_sections((root / "README.md").read_text(encoding="utf-8"))
    titles = {}
    for relative in stems.values():
        notebook = stage_notebook(root / relative, relative, pages, repo)
        titles[relative] = notebook_title(notebook)
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        (staging / relative).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    tables = {
        "lesson list": "\n".join(f"- [{titles[p]}]({p})" for p in stems.values() if p.startswith("notebooks/")),
        "exercise list": "\n".join(f"- [{titles[p]}]({p})" for p in stems.values() if p.startswith("exercises/")),
        "lesson toctree": "\n".join(p.removesuffix(".ipynb") for p in stems.values() if p.startswith("notebooks/")),
        "exercise toctree": "\n".join(p.removesuffix(".ipynb") for p in stems.values() if p.startswith("exercises/")),
    }
    for source in hand_written:
        page = fill_readme_markers(source.read_text(encoding="utf-8"), sections, source)
        for name, value in tables.items():
            page = page.replace(f"<!-- SITE: {name} -->", value)
        page = link_notebook_names(point_links(page, source.name, pages, repo), stems, titles, source.name)
        (staging / source.name).write_text(page, encoding="utf-8")
    licences = (root / "DATA_LICENSES.md").read_text(encoding="utf-8")
    (staging / "DATA_LICENSES.md").write_text(point_links(licences, "DATA_LICENSES.md", pages, repo), encoding="utf-8")
    return sorted(pages)


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(out: Path, repo: Repository, root: Path = ROOT, quiet: bool = True) -> SiteReport:
    """Stage and render the site into ``out`` (replaced); raise ``RuntimeError`` on a Sphinx warning."""
    began = time.perf_counter()
    build_dir = out.parent
    staging, doctrees = build_dir / "site-src", build_dir / "site-doctrees"
    stage(staging, repo, root)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(doctrees, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-c", str(root / "website"),
               "-d", str(doctrees), *(["-q"] if quiet else []), str(staging), str(out)]
    env = {**os.environ, "COURSE_REPO_URL": repo.url, "COURSE_REPO_BRANCH": repo.branch}
    result = subprocess.run(command, env=env, cwd=root)
    if result.returncode != 0:
        raise RuntimeError(f"sphinx-build failed with exit code {result.returncode} (warnings count as errors; see above)")
    for folder in NOTEBOOK_FOLDERS:  # the download button hands out the notebook as in the repository
        for source in (root / folder).glob("*.ipynb"):
            shutil.copyfile(source, out / "_sources" / folder / source.name)
    (out / ".nojekyll").touch()  # GitHub Pages: serve _static/ as is
    return SiteReport(time.perf_counter() - began, folder_size(out), len(list(out.rglob("*.html"))), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "site")
    parser.add_argument("--repo-url", default=os.environ.get("COURSE_REPO_URL") or PLACEHOLDER_REPO_URL,
                        help="the course's GitHub repository (default: $COURSE_REPO_URL, else a placeholder)")
    parser.add_argument("--branch", default=os.environ.get("COURSE_REPO_BRANCH") or "main")
    args = parser.parse_args(argv)
    try:
        repo = Repository(args.repo_url, args.branch)
        report = build(args.out.resolve(), repo)
    except (ValueError, RuntimeError) as error:
        print(f"site: {error}", file=sys.stderr)
        return 1
    if repo.url == PLACEHOLDER_REPO_URL:
        print(f"site: the Colab links point at the placeholder {PLACEHOLDER_REPO_URL}; "
              "set COURSE_REPO_URL=https://github.com/OWNER/NAME", file=sys.stderr)
    print(f"site: {report.html_pages} pages, {report.size_bytes / 2**20:.1f} MiB in {report.out} "
          f"({report.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
