"""Dockerfile parsing, variable substitution and the build context: pure logic, no containers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.config.spec import BuildInstruction
from runner.images import context as ctx
from runner.images import dockerfile as df
from runner.images.build import Builder, BuiltImage
from runner.images.errors import ImageError
from runner.images.jobimage import instructions_from_spec
from runner.settings import Paths

# ---- parser ----------------------------------------------------------------------------------------


def test_continuations_and_comments_join_one_instruction_at_its_first_line() -> None:
    parsed = df.parse(
        "# a comment before anything\n"
        "FROM host\n"
        "\n"
        "RUN echo one \\\n"
        "    # a comment inside the continuation is dropped\n"
        "    && echo two \\   \n"
        "    && echo three\n"
        "ENV A=1\n"
    )
    run, env = parsed.stages[0].instructions
    assert (run.keyword, run.line) == ("RUN", 4)
    assert run.args == "echo one && echo two && echo three"
    assert (env.keyword, env.line, env.args) == ("ENV", 8, "A=1")


def test_empty_lines_inside_a_continuation_do_not_end_it() -> None:
    parsed = df.parse("FROM host\nRUN apt-get install \\\n    foo \\\n\n    bar\nRUN last \\\n\n")
    assert [(i.line, i.args) for i in parsed.stages[0].instructions] == [
        (2, "apt-get install foo bar"),
        (6, "last"),
    ]


def test_escape_directive_changes_the_continuation_character() -> None:
    parsed = df.parse("# escape=`\nFROM host\nRUN echo a `\n  b\nCOPY c:\\dir\\ /x\n")
    run, copy = parsed.stages[0].instructions
    assert run.args == "echo a b"
    assert copy.args == "c:\\dir\\ /x"  # a backslash is an ordinary character now


def test_escape_directive_only_counts_before_the_first_instruction() -> None:
    parsed = df.parse("FROM host\n# escape=`\nRUN echo a `\nRUN echo b\n")
    assert [i.args for i in parsed.stages[0].instructions] == ["echo a `", "echo b"]


def test_arg_before_from_is_global_and_substituted_into_from() -> None:
    parsed = df.parse("ARG BASE=host\nARG TAG\nFROM ${BASE}\nRUN true\n")
    assert [a.args for a in parsed.global_args] == ["BASE=host", "TAG"]
    assert parsed.stages[0].base == "${BASE}"
    assert df.substitute(parsed.stages[0].base, {"BASE": "host"}) == "host"


def test_stage_names_are_case_insensitive_and_found_by_name_or_index() -> None:
    parsed = df.parse("FROM host AS Builder\nRUN true\nFROM scratch\nCOPY --from=builder /a /a\n")
    assert [s.name for s in parsed.stages] == ["builder", None]
    assert parsed.stage("BUILDER") is parsed.stages[0]
    assert parsed.stage("1") is parsed.stages[1]
    assert parsed.stage("missing") is None
    assert parsed.stages[1].instructions[0].flags == {"from": "builder"}


def test_flags_are_split_from_copy_and_from() -> None:
    parsed = df.parse("FROM --platform=linux/amd64 host\nCOPY --chown=10:20 --chmod=0640 a b /dst/\n")
    copy = parsed.stages[0].instructions[0]
    assert copy.flags == {"chown": "10:20", "chmod": "0640"}
    assert df.copy_args(copy, {}, "Dockerfile") == (["a", "b"], "/dst/")
    assert parsed.stages[0].base == "host"


@pytest.mark.parametrize(
    ("line", "form"),
    [
        ('CMD ["python", "-m", "app"]', ["python", "-m", "app"]),
        ('ENTRYPOINT ["/bin/sh","-c"]', ["/bin/sh", "-c"]),
        ("CMD python -m app", None),  # shell form
        ('CMD ["unterminated"', None),  # not valid JSON: the shell form, as Docker does
        ("CMD [1, 2]", None),  # JSON but not strings
    ],
)
def test_json_and_shell_forms(line: str, form: list[str] | None) -> None:
    instruction = df.parse(f"FROM host\n{line}\n").stages[0].instructions[0]
    assert instruction.json_form() == form


def test_copy_json_form_keeps_spaces_in_names() -> None:
    copy = df.parse('FROM host\nCOPY ["a b.txt", "$D/c d/"]\n').stages[0].instructions[0]
    assert df.copy_args(copy, {"D": "/opt"}, "Dockerfile") == (["a b.txt"], "/opt/c d/")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM host\nRUN true\nFETCH http://x\n", "Dockerfile:3: unknown instruction 'FETCH'"),
        ("RUN echo no base\n", "Dockerfile:1: RUN before the first FROM (only ARG may come first)"),
        ("ARG A=1\nENV B=2\nFROM host\n", "Dockerfile:2: ENV before the first FROM"),
        ("# only a comment\n", "Dockerfile: no FROM instruction"),
        ("ARG A=1\n", "Dockerfile: no FROM instruction"),
        ("FROM host\nRUN true \\\n  more\nRUN\n", "Dockerfile:4: RUN needs arguments"),
        ("FROM host as\n", "Dockerfile:1: FROM takes an image and an optional `AS name`"),
        ("FROM host AS a\nFROM host AS A\n", "Dockerfile:2: duplicate stage name 'A'"),
        ("FROM host AS 1bad\n", "Dockerfile:1: invalid stage name '1bad'"),
    ],
)
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ImageError) as info:
        df.parse(text)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_errors_use_the_given_file_name() -> None:
    with pytest.raises(ImageError, match=r"^ci/Build\.docker:2: unknown instruction 'NOPE'$"):
        df.parse("FROM host\nnope x\n", "ci/Build.docker")


def test_key_values_in_both_forms() -> None:
    env = df.parse('FROM host\nENV A=1 B="two words" C=$A\n').stages[0].instructions[0]
    assert df.key_values(env, {"A": "0"}, "Dockerfile") == [("A", "1"), ("B", "two words"), ("C", "0")]
    legacy = df.parse("FROM host\nENV GREETING hello  world\n").stages[0].instructions[0]
    assert df.key_values(legacy, {}, "Dockerfile") == [("GREETING", "hello  world")]
    bad = df.parse("FROM host\nLABEL 9x=1\n").stages[0].instructions[0]
    with pytest.raises(ImageError, match=r"^Dockerfile:2: invalid name '9x' in LABEL$"):
        df.key_values(bad, {}, "Dockerfile")
    unbalanced = df.parse('FROM host\nENV A="open\n').stages[0].instructions[0]
    with pytest.raises(ImageError, match=r"^Dockerfile:2: ENV: "):
        df.key_values(unbalanced, {}, "Dockerfile")


# ---- substitute ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A/${A}", "1/1"),
        ("${A:-x}|${UNSET:-x}|${EMPTY:-x}", "1|x|x"),
        ("${A:+y}|${UNSET:+y}|${EMPTY:+y}", "y||"),
        ("${UNSET:-$A}", "1"),  # the default is itself substituted
        (r"\$A and \${A}", "$A and ${A}"),
        ("$UNSET-end", "-end"),
        ("cost: 5$", "cost: 5$"),  # a lone dollar stays
        ("${A}B$AB", "1B"),  # $AB is another (unset) variable
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert df.substitute(text, {"A": "1", "EMPTY": ""}) == expected


# ---- .dockerignore ---------------------------------------------------------------------------------


def _context(tmp_path: Path, files: list[str], dockerignore: str) -> Path:
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / ".dockerignore").write_text(dockerignore)
    return tmp_path


@pytest.mark.parametrize(
    ("path", "is_ignored"),
    [
        ("top.pyc", False),  # re-included by `!top.pyc`
        ("pkg/mod.pyc", True),  # `**/*.pyc` at any depth
        ("pkg/deep/er/mod.pyc", True),
        ("pkg/mod.py", False),
        ("README.md", True),  # `*.md` is anchored at the root ...
        ("pkg/README.md", False),  # ... so it does not reach into directories
        ("build", True),  # `build/` ignores the directory ...
        ("build/out.o", True),  # ... and everything in it
        ("builder.txt", False),
        ("docs/a.txt", True),
        ("docs/keep.txt", False),  # an exception inside an ignored directory
        ("x/node_modules/y.js", True),  # `**/node_modules`
        ("?", False),
    ],
)
def test_dockerignore_matching(tmp_path: Path, path: str, is_ignored: bool) -> None:
    _context(
        tmp_path,
        [],
        "# comment\n\n**/*.pyc\n!top.pyc\n*.md\nbuild/\n/docs\n!docs/keep.txt\n**/node_modules\n",
    )
    rules = ctx.load_dockerignore(tmp_path)
    assert ctx.ignored(path, rules) is is_ignored


def test_later_rules_win(tmp_path: Path) -> None:
    rules = ctx.load_dockerignore(_context(tmp_path, [], "*.log\n!important.log\nimportant.log\n"))
    assert ctx.ignored("important.log", rules)
    rules = ctx.load_dockerignore(_context(tmp_path, [], "*.log\n!important.log\n"))
    assert not ctx.ignored("important.log", rules)


def test_copy_of_the_context_honours_dockerignore_and_its_exceptions(tmp_path: Path) -> None:
    context = _context(
        tmp_path / "c",
        ["app.py", "app.pyc", "docs/a.md", "docs/keep.md", "build/out.o", "sub/b.pyc", "sub/b.py"],
        "**/*.pyc\ndocs\n!docs/keep.md\nbuild/\n",
    )
    rules = ctx.load_dockerignore(context)
    layer = tmp_path / "layer"
    layer.mkdir()
    sources = ctx.expand_sources(context, ["."], rules)
    ctx.copy_into_layer(context, sources, "/app/", layer, rules)
    copied = sorted(p.relative_to(layer).as_posix() for p in layer.rglob("*") if not p.is_dir())
    assert copied == ["app/.dockerignore", "app/app.py", "app/docs/keep.md", "app/sub/b.py"]
    assert (layer / "app/docs/keep.md").read_text() == "docs/keep.md"


def test_glob_sources_skip_ignored_files_and_an_empty_match_is_an_error(tmp_path: Path) -> None:
    context = _context(tmp_path, ["a.txt", "b.txt", "c.log"], "b.txt\n")
    rules = ctx.load_dockerignore(context)
    found = ctx.expand_sources(context, ["*.txt"], rules)
    assert [p.name for p in found] == ["a.txt"]
    with pytest.raises(ImageError, match=r"^COPY source '\*\.md' matches no file in the build context$"):
        ctx.expand_sources(context, ["*.md"], rules)
    with pytest.raises(ImageError, match=r"^COPY source 'nope' does not exist in the build context$"):
        ctx.expand_sources(context, ["nope"], rules)


def test_a_named_source_that_dockerignore_excludes_is_refused(tmp_path: Path) -> None:
    context = _context(tmp_path, ["secret.env", "docs/a.md", "docs/keep.md"], "*.env\ndocs\n!docs/keep.md\n")
    rules = ctx.load_dockerignore(context)
    with pytest.raises(ImageError, match=r"^COPY source 'secret.env' is excluded by .dockerignore$"):
        ctx.expand_sources(context, ["secret.env"], rules)
    [docs] = ctx.expand_sources(context, ["docs"], rules)  # an ignored directory may hold exceptions
    layer = tmp_path / "layer"
    layer.mkdir()
    ctx.copy_into_layer(context, [docs], "/d/", layer, rules)
    assert sorted(p.name for p in (layer / "d").rglob("*")) == ["keep.md"]


# ---- content digests -------------------------------------------------------------------------------


def _digest(context: Path, *sources: str) -> str:
    rules = ctx.load_dockerignore(context)
    return ctx.content_digest(context, ctx.expand_sources(context, list(sources), rules), rules)


def test_content_digest_follows_content_and_mode_but_not_mtime(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    f = tmp_path / "src" / "main.py"
    f.write_text("print(1)\n")
    os.chmod(f, 0o644)
    first = _digest(tmp_path, "src")
    assert _digest(tmp_path, "src") == first  # stable

    os.utime(f, (1_000_000, 1_000_000))
    os.utime(tmp_path / "src", (2_000_000, 2_000_000))
    assert _digest(tmp_path, "src") == first  # mtimes never count

    f.write_text("print(2)\n")
    changed = _digest(tmp_path, "src")
    assert changed != first
    f.write_text("print(1)\n")
    assert _digest(tmp_path, "src") == first  # back to the same content, back to the same key

    os.chmod(f, 0o755)
    assert _digest(tmp_path, "src") not in (first, changed)


def test_content_digest_sees_renames_new_files_and_symlink_targets(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("x")
    base = _digest(tmp_path, "d")
    os.rename(tmp_path / "d" / "a", tmp_path / "d" / "b")
    renamed = _digest(tmp_path, "d")
    assert renamed != base
    (tmp_path / "d" / "empty").write_text("")
    added = _digest(tmp_path, "d")
    assert added != renamed
    os.symlink("b", tmp_path / "d" / "link")
    linked = _digest(tmp_path, "d")
    os.unlink(tmp_path / "d" / "link")
    os.symlink("empty", tmp_path / "d" / "link")
    assert _digest(tmp_path, "d") not in (added, linked)


def test_content_digest_ignores_what_dockerignore_excludes(tmp_path: Path) -> None:
    context = _context(tmp_path, ["app/main.py", "app/cache.pyc"], "**/*.pyc\n")
    before = _digest(context, "app")
    (context / "app" / "cache.pyc").write_text("changed bytecode")
    assert _digest(context, "app") == before
    (context / "app" / "main.py").write_text("changed source")
    assert _digest(context, "app") != before


# ---- sources that leave the context ----------------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["../outside.txt", "sub/../../outside.txt", "link-to-etc/passwd", "etc-link"]
)
def test_sources_escaping_the_context_are_refused(tmp_path: Path, source: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    context = tmp_path / "ctx"
    (context / "sub").mkdir(parents=True)
    os.symlink("/etc", context / "link-to-etc")
    os.symlink("/etc/passwd", context / "etc-link")
    with pytest.raises(ImageError, match=r"points outside the build context$"):
        ctx.expand_sources(context, [source], [])


def test_a_glob_through_an_escaping_symlink_is_refused(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    os.symlink("/etc", context / "etc")
    with pytest.raises(ImageError, match=r"points outside the build context$"):
        ctx.expand_sources(context, ["etc/host*"], [])


def test_absolute_sources_are_relative_to_the_context(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("mine")
    [found] = ctx.expand_sources(tmp_path, ["/etc/passwd"], [])
    assert found == (tmp_path / "etc" / "passwd").resolve()


def test_symlinks_inside_a_copied_directory_stay_symlinks(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "d").mkdir(parents=True)
    os.symlink("/etc/shadow", context / "d" / "shadow")
    layer = tmp_path / "layer"
    layer.mkdir()
    sources = ctx.expand_sources(context, ["d"], [])
    ctx.copy_into_layer(context, sources, "/x", layer, [])
    copied = layer / "x" / "shadow"
    assert copied.is_symlink() and os.readlink(copied) == "/etc/shadow"


def test_copy_semantics_for_files_and_directories(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "dir" / "inner").mkdir(parents=True)
    (context / "dir" / "inner" / "f").write_text("f")
    (context / "one").write_text("1")
    os.chmod(context / "one", 0o750)
    layer = tmp_path / "layer"
    layer.mkdir()
    rules: list[ctx.IgnoreRule] = []
    ctx.copy_into_layer(context, ctx.expand_sources(context, ["one"], rules), "/opt/renamed", layer, rules)
    ctx.copy_into_layer(context, ctx.expand_sources(context, ["one"], rules), "/into/", layer, rules)
    ctx.copy_into_layer(context, ctx.expand_sources(context, ["dir"], rules), "/contents", layer, rules)
    ctx.copy_into_layer(
        context, ctx.expand_sources(context, ["one"], rules), "/owned", layer, rules, (1234, 99), 0o600
    )
    assert (layer / "opt/renamed").read_text() == "1"
    assert oct((layer / "opt/renamed").stat().st_mode & 0o777) == oct(0o750)
    assert (layer / "into/one").read_text() == "1"
    assert (layer / "contents/inner/f").read_text() == "f"  # a directory's contents, not the directory
    assert not (layer / "contents/dir").exists()
    st = (layer / "owned").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1234, 99, 0o600)


def test_content_digest_of_names_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / os.fsdecode(b"bad\xffname")).write_text("x")
    first = _digest(tmp_path, "d")
    os.rename(tmp_path / "d" / os.fsdecode(b"bad\xffname"), tmp_path / "d" / os.fsdecode(b"bad\xfename"))
    assert _digest(tmp_path, "d") != first


# ---- builds that need no container (FROM scratch, COPY and config only) -----------------------------


def _build_without_containers(tmp_path: Path, dockerfile: bytes | str, **files: str) -> BuiltImage:
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    for name, text in files.items():
        (context / name).write_text(text)
    data = dockerfile.encode() if isinstance(dockerfile, str) else dockerfile
    (context / "Dockerfile").write_bytes(data)
    builder = Builder(Paths(tmp_path / "home"), out=lambda line: None)
    return builder.build_dockerfile(context / "Dockerfile", context)


def _files(built: BuiltImage) -> set[str]:
    found = set()
    for layer in built.layer_dirs:
        found |= {p.relative_to(layer).as_posix() for p in layer.rglob("*") if not p.is_dir()}
    return found


@pytest.mark.parametrize(
    ("workdir", "dest", "expected"),
    [
        ("/app", ".", "app/a.txt"),
        ("/app", "./", "app/a.txt"),
        ("/app", "sub/.", "app/sub/a.txt"),
        ("/app", "renamed", "app/renamed"),
        ("/app", "../top/", "top/a.txt"),
        ("/", ".", "a.txt"),
        ("/app", "/abs/.", "abs/a.txt"),
    ],
)
def test_copy_destinations_relative_to_workdir(
    tmp_path: Path, workdir: str, dest: str, expected: str
) -> None:
    built = _build_without_containers(
        tmp_path, f"FROM scratch\nWORKDIR {workdir}\nCOPY a.txt {dest}\n", **{"a.txt": "a"}
    )
    assert _files(built) == {expected}


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        (
            b"FROM scratch\nCOPY --chmod=abc a.txt /x\n",
            "Dockerfile:2: --chmod=abc: use an octal mode such as 0644",
        ),
        (b"FROM scratch\nCOPY --chmod=77777 a.txt /x\n", "Dockerfile:2: --chmod=77777: use an octal mode"),
        (
            b"FROM scratch\nCOPY --chown=bob a.txt /x\n",
            "Dockerfile:2: --chown=bob: no user 'bob' in the image's /etc/passwd",
        ),
        (b"FROM scratch\nCOPY a.txt\n", "Dockerfile:2: COPY needs a source and a destination"),
        (
            b"FROM scratch\nCOPY ../a.txt /x\n",
            "Dockerfile:2: COPY source '../a.txt' points outside the build context",
        ),
        (
            b"FROM scratch\nCOPY missing /x\n",
            "Dockerfile:2: COPY source 'missing' does not exist in the build context",
        ),
        (b"FROM scratch\nRUN echo \xff\n", "Dockerfile: not UTF-8 text (byte 22); save it as UTF-8"),
        (b"FROM scratch\nSHELL /bin/bash -c\n", "Dockerfile:2: SHELL needs the JSON form"),
    ],
)
def test_build_errors_are_one_line(tmp_path: Path, dockerfile: bytes, message: str) -> None:
    with pytest.raises(ImageError) as info:
        _build_without_containers(tmp_path, dockerfile, **{"a.txt": "a"})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_an_unknown_target_stage_is_refused(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch AS a\nFROM a\n")
    with pytest.raises(ImageError, match=r"^Dockerfile: no stage named 'nope'$"):
        Builder(Paths(tmp_path / "home"), out=lambda line: None).build_dockerfile(
            context / "Dockerfile", context, target="nope"
        )


def test_copy_only_builds_are_cached_by_content(tmp_path: Path) -> None:
    lines: list[str] = []
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "a.txt").write_text("one")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /a\nENV X=1\nCOPY a.txt /b\n")
    paths = Paths(tmp_path / "home")
    first = Builder(paths, out=lines.append).build_dockerfile(context / "Dockerfile", context)
    lines.clear()
    again = Builder(paths, out=lines.append).build_dockerfile(context / "Dockerfile", context)
    assert [line.split()[0] for line in lines if line.startswith("  ")] == ["CACHED", "CACHED", "CACHED"]
    assert again.image_id == first.image_id
    (context / "a.txt").write_text("two")
    lines.clear()
    changed = Builder(paths, out=lines.append).build_dockerfile(context / "Dockerfile", context)
    assert "  building" in "\n".join(lines) and "(the copied files changed)" in "\n".join(lines)
    assert changed.image_id != first.image_id


def test_ci_yml_build_entries_become_instructions_with_values_kept_whole(tmp_path: Path) -> None:
    entries = [
        BuildInstruction("copy", ("req's.txt", "/src/req's.txt")),
        BuildInstruction("env", ("QUOTE=it's", "SPACED=a b", 'DOUBLE=say "hi"', "BACKSLASH=a\\b", "EMPTY=")),
        BuildInstruction("env", ("PATH=/opt/bin:$PATH",)),
        BuildInstruction("workdir", ("/srv",)),
    ]
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "req's.txt").write_text("r")
    builder = Builder(Paths(tmp_path / "home"), out=lambda line: None)
    built = builder.build_steps("scratch", instructions_from_spec(entries), tmp_path / "ctx")
    assert built.config["Env"] == [
        "QUOTE=it's",
        "SPACED=a b",
        'DOUBLE=say "hi"',
        "BACKSLASH=a\\b",
        "EMPTY=",
        "PATH=/opt/bin:",  # $PATH expands as in a Dockerfile ENV: scratch has none
    ]
    assert built.config["WorkingDir"] == "/srv"
    assert _files(built) == {"src/req's.txt"}


def _tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> None:
    import io
    import tarfile

    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.usefixtures("tar_extraction")
def test_add_extracts_local_archives_and_copies_other_files(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    _tar(context / "bundle.tar.gz", {"pkg/a.txt": b"a", "pkg/sub/b.txt": b"b"})
    (context / "plain.txt").write_text("plain")
    built = _build_without_containers(tmp_path, "FROM scratch\nADD bundle.tar.gz plain.txt /opt/\n")
    assert _files(built) == {"opt/pkg/a.txt", "opt/pkg/sub/b.txt", "opt/plain.txt"}
    copied = _build_without_containers(tmp_path, "FROM scratch\nCOPY bundle.tar.gz /opt/\n")
    assert _files(copied) == {"opt/bundle.tar.gz"}  # COPY never extracts


@pytest.fixture(params=["data filter", "before 3.11.4"])
def tar_extraction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways ADD extracts: tarfile's data filter, and the checks for Pythons without it (Debian 12)."""
    import tarfile

    if request.param == "before 3.11.4":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)


@pytest.mark.usefixtures("tar_extraction")
def test_add_refuses_archives_that_climb_out_of_the_destination(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    _tar(context / "evil.tar", {"../escape.txt": b"x"}, mode="w")
    with pytest.raises(ImageError) as info:
        _build_without_containers(tmp_path, "FROM scratch\nADD evil.tar /opt/\n")
    assert str(info.value).startswith("ADD evil.tar: cannot extract:")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "escape.txt").exists()
    assert not list((tmp_path / "home" / "tmp").iterdir())  # no half-made layer left


@pytest.mark.usefixtures("tar_extraction")
def test_add_puts_absolute_archive_members_under_the_destination(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    _tar(context / "abs.tar", {"/abs.txt": b"x"}, mode="w")
    built = _build_without_containers(tmp_path, "FROM scratch\nADD abs.tar /opt/\n")
    assert _files(built) == {"opt/abs.txt"}


def test_add_from_a_url_is_refused_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"^Dockerfile:2: ADD from a URL is not supported"):
        _build_without_containers(tmp_path, "FROM scratch\nADD https://example.com/x.tgz /opt/\n")


def test_user_and_group_names_come_from_the_images_own_files(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "etc").mkdir(parents=True)
    (context / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1234:4321::/home/app:/bin/sh\n")
    (context / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    built = _build_without_containers(
        tmp_path,
        "FROM scratch\nCOPY etc /etc\nCOPY --chown=app a.txt /a\nCOPY --chown=app:staff a.txt /b\n"
        "COPY --chown=7:staff a.txt /c\n",
        **{"a.txt": "a"},
    )
    top = {p.name: p.stat() for layer in built.layer_dirs for p in layer.iterdir() if p.is_file()}
    assert (top["a"].st_uid, top["a"].st_gid) == (1234, 4321)  # the user's primary group
    assert (top["b"].st_uid, top["b"].st_gid) == (1234, 50)
    assert (top["c"].st_uid, top["c"].st_gid) == (7, 50)
    with pytest.raises(
        ImageError, match=r"^Dockerfile:3: --chown=app:nogroup: no group 'nogroup' in the image"
    ):
        _build_without_containers(
            tmp_path, "FROM scratch\nCOPY etc /etc\nCOPY --chown=app:nogroup a.txt /d\n"
        )
