"""git-basic: status, log, diff, commit and branch on a repository in the workspace.

Runs git through GitPython. Repository config that could run programs is neutralised on
every git call (hooks, fsmonitor, external diff and text conversion), and commits are
written by GitPython without running hooks.
"""

import json
import re
import sys
from pathlib import Path

try:
    import git
except ImportError:  # the interpreter is not the gateway's venv
    print(
        "git-basic: GitPython is not installed for this Python "
        f"({sys.executable}); install nexflow with the 'workspace' extra",
        file=sys.stderr,
    )
    sys.exit(3)

SAFE_CONFIG = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "protocol.allow=never",
]
MAX_LOG = 100
MAX_DIFF = 200 * 1024
DEFAULT_AUTHOR = ("Nexflow", "nexflow@localhost")
REF_BAD = re.compile(r"(^[-./])|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(@\{)|(/$)|(\.lock$)|(^@$)")


class Refused(Exception):
    pass


def inside(root, raw, what):
    if not isinstance(raw, str) or "\0" in raw:
        raise Refused(f"{what} must be a string")
    target = (root / raw).resolve()
    if not target.is_relative_to(root):
        raise Refused(f"{what} {raw!r} is outside the workspace")
    return target


def open_repo(args):
    root = Path.cwd().resolve()
    where = inside(root, args.get("repo", "."), "repo")
    try:
        repo = git.Repo(where, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise Refused(f"{args.get('repo', '.')!r} is not a git repository") from None
    if repo.bare:
        raise Refused("the repository is bare")
    repo.git.set_persistent_git_options(c=SAFE_CONFIG)
    return repo, Path(repo.working_tree_dir).resolve()


def rel_paths(top, raw):
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Refused("'paths' must be a list of paths")
    return [str(inside(top, p, "path").relative_to(top)) or "." for p in raw]


def branch_name(raw):
    if not isinstance(raw, str) or not raw or len(raw) > 200 or REF_BAD.search(raw):
        raise Refused(f"{raw!r} is not a valid branch name")
    return raw


def status(repo, top, args):
    try:
        branch = repo.active_branch.name
    except TypeError:
        branch = None  # detached HEAD
    lines = repo.git.status("--porcelain=v1", "--untracked-files=normal").splitlines()
    files = [{"status": line[:2], "path": line[3:]} for line in lines]
    return {"branch": branch, "clean": not files, "files": files}


def log(repo, top, args):
    count = max(1, min(int(args.get("max_count", 10)), MAX_LOG))
    if not repo.head.is_valid():
        return {"commits": []}
    commits = [
        {
            "sha": c.hexsha[:12],
            "author": c.author.name,
            "date": c.committed_datetime.isoformat(),
            "message": c.message.strip()[:2000],
        }
        for c in repo.iter_commits(max_count=count, paths=rel_paths(top, args.get("paths")))
    ]
    return {"commits": commits}


def diff(repo, top, args):
    opts = ["--no-ext-diff", "--no-textconv", "--no-color"]
    if args.get("staged"):
        opts.append("--cached")
    text = repo.git.diff(*opts, "--", *rel_paths(top, args.get("paths")))
    stat = repo.git.diff(*opts, "--stat", "--", *rel_paths(top, args.get("paths")))
    truncated = len(text) > MAX_DIFF
    return {"diff": text[:MAX_DIFF], "stat": stat, "truncated": truncated}


def commit(repo, top, args):
    message = args.get("message")
    if not isinstance(message, str) or not message.strip():
        raise Refused("'message' is required for commit")
    paths = rel_paths(top, args.get("paths"))
    if args.get("all"):
        repo.git.add("--all", "--", ".")
    elif paths:
        repo.git.add("--", *paths)
    if repo.head.is_valid() and not repo.index.diff("HEAD"):
        raise Refused("nothing to commit (stage files with 'paths' or set 'all')")
    if not repo.head.is_valid() and not repo.index.entries:
        raise Refused("nothing to commit (stage files with 'paths' or set 'all')")
    reader = repo.config_reader()
    name = reader.get_value("user", "name", DEFAULT_AUTHOR[0])
    email = reader.get_value("user", "email", DEFAULT_AUTHOR[1])
    actor = git.Actor(str(args.get("author_name") or name), str(args.get("author_email") or email))
    new = repo.index.commit(message.strip(), author=actor, committer=actor, skip_hooks=True)
    return {
        "sha": new.hexsha[:12],
        "message": new.message.strip(),
        "files": sorted(new.stats.files),
    }


def branch(repo, top, args):
    name = args.get("name")
    op = args.get("op", "list" if name is None else "create")
    if op == "list":
        try:
            current = repo.active_branch.name
        except TypeError:
            current = None
        return {"current": current, "branches": sorted(h.name for h in repo.heads)}
    name = branch_name(name)
    if op == "create":
        if name in repo.heads:
            raise Refused(f"branch {name!r} already exists")
        repo.create_head(name)
    elif op == "switch":
        if name not in repo.heads:
            raise Refused(f"branch {name!r} does not exist")
        repo.heads[name].checkout()
    else:
        raise Refused("'op' must be list, create or switch")
    return {"current": repo.active_branch.name, "branches": sorted(h.name for h in repo.heads)}


HANDLERS = {"status": status, "log": log, "diff": diff, "commit": commit, "branch": branch}


def main():
    try:
        args = json.load(sys.stdin)
        if not isinstance(args, dict):
            raise Refused("input must be a JSON object")
        action = args.get("action")
        if action not in HANDLERS:
            raise Refused(f"'action' must be one of {', '.join(HANDLERS)}")
        repo, top = open_repo(args)
        with repo:
            out = {"action": action, **HANDLERS[action](repo, top, args)}
    except Refused as e:
        print(f"git-basic: {e}", file=sys.stderr)
        return 2
    except git.GitCommandError as e:
        detail = (e.stderr or "").strip().removeprefix("stderr:").strip(" '\n")
        print(f"git-basic: git failed: {detail or e.status}", file=sys.stderr)
        return 1
    except (git.GitError, OSError, ValueError) as e:
        print(f"git-basic: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
