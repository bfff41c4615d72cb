"""`fieldsync validate`: the shipped fields pass; every kind of bad file yields one located, actionable error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsync.cli import main
from fieldsync.rules import schemas

ROOT = Path(__file__).resolve().parents[1]
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

# name: (files {relative path: content}, problem file, line, fragment of the message)
CORPUS: dict[str, tuple[dict[str, str | bytes], str, int, str]] = {
    "syntax_error": ({"a.yaml": "name: a\ndisplay_name: [one,\n"}, "a.yaml", 3, "YAML"),
    "tab_indent": ({"a.yaml": "name: a\nvalidation:\n\tpattern: x\n"}, "a.yaml", 3, "YAML"),
    "wrong_type": ({"a.yaml": "name: a\norder: ten\n"}, "a.yaml", 2, "'order' must be of type integer"),
    "bool_as_string": ({"a.yaml": "name: a\nrequired: 'yes'\n"}, "a.yaml", 2, "'required' must be of type boolean"),
    "unknown_key": ({"a.yaml": "name: a\ndispaly_name: A\n"}, "a.yaml", 2, "did you mean 'display_name'"),
    "unknown_nested_key": ({"a.yaml": "name: a\nvalidation:\n  patern: x\n"}, "a.yaml", 3, "did you mean 'pattern'"),
    "bad_enum": ({"a.yaml": "name: a\nfield_type: strng\n"}, "a.yaml", 2, "did you mean 'string'"),
    "bad_regex": ({"a.yaml": "name: a\nvalidation_regex: '[a-'\n"}, "a.yaml", 2, "not a valid JavaScript regular"),
    "bad_nested_regex": ({"a.yaml": "name: a\nvalidation: {pattern: '(x'}\n"}, "a.yaml", 2, "validation.pattern"),
    "default_vs_regex": ({"a.yaml": "name: a\nvalidation_regex: '^[0-9]+$'\ndefault_value: abc\n"}, "a.yaml", 3,
                         "does not match 'validation_regex'"),
    "name_mismatch": ({"a.yaml": "name: b\n"}, "a.yaml", 1, "must equal the file name 'a'"),
    "name_pattern": ({"1a.yaml": "name: 1a\n"}, "1a.yaml", 1, "'name' '1a' does not match"),
    "missing_name": ({"a.yaml": "display_name: A\n"}, "a.yaml", 1, "missing required key 'name'"),
    "duplicate_name": ({"region.yaml": "name: region\n", "Region.yaml": "name: Region\n"}, "region.yaml", 1,
                       "already used by"),
    "duplicate_key": ({"a.yaml": "name: a\norder: 1\norder: 2\n"}, "a.yaml", 3, "duplicate key 'order'"),
    "option_object": ({"a.yaml": "name: a\noptions: [{value: x, label: X}]\n"}, "a.yaml", 2, "'options.0'"),
    "category_with_space": ({"a.yaml": "name: a\ncategory: minha categoria\n"}, "a.yaml", 2, "lowercase slug"),
    "category_accented_uppercase": ({"a.yaml": "name: a\ncategory: Localização\n"}, "a.yaml", 2, "lowercase slug"),
    "duplicate_options": ({"a.yaml": "name: a\noptions: [x, x]\n"}, "a.yaml", 2, "non-unique"),
    "category_uppercase": ({"a.yaml": "name: a\ncategory: Basic\n"}, "a.yaml", 2, "lowercase slug"),
    "category_empty_list": ({"a.yaml": "name: a\ncategory: []\n"}, "a.yaml", 2, "'category'"),
    "category_number": ({"a.yaml": "name: a\ncategory: 5\n"}, "a.yaml", 2, "must be of type string or array"),
    "negative_order": ({"a.yaml": "name: a\norder: -1\n"}, "a.yaml", 2, "minimum of 0"),
    "empty_display_name": ({"a.yaml": "name: a\ndisplay_name: ''\n"}, "a.yaml", 2, "'display_name'"),
    "non_utf8": ({"a.yaml": b"name: a\ndescription: caf\xe9\n"}, "a.yaml", 2, "not valid UTF-8"),
    "nul_byte": ({"a.yaml": "name: a\ndescription: a\x00b\n"}, "a.yaml", 2, "control character"),
    "alias_bomb": ({"a.yaml": BOMB}, "a.yaml", 1, "aliases"),
    "merge_key": ({"a.yaml": "name: a\n<<: {order: 1}\n"}, "a.yaml", 2, "merge keys"),
    "python_tag": ({"a.yaml": "name: a\ndescription: !!python/object/apply:os.system [ls]\n"}, "a.yaml", 2,
                   "unsupported YAML tag"),
    "custom_tag": ({"a.yaml": "name: a\norder: !env ORDER\n"}, "a.yaml", 2, "unsupported YAML tag"),
    "empty_file": ({"a.yaml": ""}, "a.yaml", 1, "file is empty"),
    "only_comments": ({"a.yaml": "# nothing here\n"}, "a.yaml", 1, "file is empty"),
    "list_top_level": ({"a.yaml": "- name: a\n"}, "a.yaml", 1, "top level must be a mapping"),
    "scalar_top_level": ({"a.yaml": "just text\n"}, "a.yaml", 1, "top level must be a mapping"),
    "two_documents": ({"a.yaml": "name: a\n---\nname: b\n"}, "a.yaml", 2, "single document"),
    "non_string_key": ({"a.yaml": "name: a\n1: one\n"}, "a.yaml", 2, "must be a string"),
    "yes_key": ({"a.yaml": "name: a\nyes: 1\n"}, "a.yaml", 2, "unknown key 'yes'"),  # YAML 1.2: a string
    "yes_as_boolean": ({"a.yaml": "name: a\nrequired: yes\n"}, "a.yaml", 2, "'required' must be of type boolean"),
    "python_named_group": ({"a.yaml": "name: a\nvalidation_regex: '(?P<n>a)'\n"}, "a.yaml", 2, "JavaScript"),
    "python_inline_flag": ({"a.yaml": "name: a\nvalidation: {regex: '(?i)abc'}\n"}, "a.yaml", 2, "JavaScript"),
    "possessive": ({"a.yaml": "name: a\nvalidation: {pattern: 'a++'}\n"}, "a.yaml", 2, "JavaScript"),
    "ten_megabytes": ({"a.yaml": "name: a\ndescription: " + "x" * 10_000_000 + "\n"}, "a.yaml", 1,
                      "larger than"),
    "yml_extension": ({"a.yml": "name: a\n"}, "a.yml", 1, "rename to a.yaml"),
    "stray_file": ({"notes.txt": "hello\n"}, "notes.txt", 1, "not a field file"),
    "subdirectory": ({"sub/a.yaml": "name: a\n"}, "sub", 1, "subdirectories"),
}


def _problems(directory: Path) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(main, ["validate", "--no-cache", "--format", "json", str(directory)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)["problems"], result.output


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_file_yields_one_located_error(case: str, tmp_path: Path) -> None:
    files, bad, line, fragment = CORPUS[case]
    for relpath, content in files.items():
        target = tmp_path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, problems, output = _problems(tmp_path)
    assert code == 1
    assert [(p["path"], p["line"]) for p in problems] == [(str(tmp_path / bad), line)], output
    assert fragment in problems[0]["message"], output
    assert "Traceback" not in output


def test_symlink_is_reported(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("name: a\n")
    fields = tmp_path / "fields"
    fields.mkdir()
    os.symlink(tmp_path / "real.txt", fields / "a.yaml")
    code, problems, _ = _problems(fields)
    assert code == 1 and "symbolic links" in problems[0]["message"]


def test_shipped_fields_are_valid() -> None:
    result = CliRunner().invoke(main, ["validate", "--no-cache", "--repo", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert f"{len(list((ROOT / 'fields').glob('*.yaml')))} field file(s) valid" in result.output


def test_whole_corpus_through_the_installed_command(tmp_path: Path) -> None:
    """One process, every bad file at once: exit 1, every file named, no traceback."""
    for case, (files, _, _, _) in CORPUS.items():
        if case in ("duplicate_name", "subdirectory", "stray_file", "yml_extension"):
            continue
        content = next(iter(files.values()))
        (tmp_path / f"{case}.yaml").write_bytes(content if isinstance(content, bytes) else content.encode())
    done = subprocess.run([sys.executable, "-m", "fieldsync", "validate", "--no-cache", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    named = {line.split(":", 1)[0] for line in done.stderr.splitlines() if ": error: " in line}
    assert len(named) == len(list(tmp_path.iterdir()))


def test_github_format_annotates_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nfield_type: strng\n")
    result = CliRunner().invoke(main, ["validate", "--no-cache", "--format", "github", str(tmp_path)])
    assert result.exit_code == 1
    assert f"::error file={tmp_path}/a.yaml,line=2,col=13,title=fieldsync::'field_type' must be one of" in result.output


def test_rev_reads_the_commit_not_the_disk(field_repo) -> None:
    field_repo.write("fields/company.yaml", "name: company\norder: broken\n")  # uncommitted
    at_head = CliRunner().invoke(main, ["validate", "--no-cache", "--rev", "HEAD", "--repo", str(field_repo.path)])
    on_disk = CliRunner().invoke(main, ["validate", "--no-cache", "--repo", str(field_repo.path)])
    assert at_head.exit_code == 0, at_head.output
    assert on_disk.exit_code == 1
    field_repo.commit("break company")
    field_repo.write("fields/company.yaml", "name: company\n")  # fixed on disk only
    at_head = CliRunner().invoke(main, ["validate", "--no-cache", "--rev", "HEAD", "--repo", str(field_repo.path)])
    assert at_head.exit_code == 1
    assert "fields/company.yaml:2:8: error: 'order' must be of type integer" in at_head.output
    previous = CliRunner().invoke(main, ["validate", "--rev", "HEAD~1", "--repo", str(field_repo.path), "--no-cache"])
    assert previous.exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["--rev", "no-such-rev"], "revision 'no-such-rev' not found"),
    (["does/not/exist"], "no such file or directory"),
    (["--format", "xml"], "Invalid value for '--format'"),
])
def test_usage_errors_exit_2(field_repo, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["validate", "--no-cache", "--repo", str(field_repo.path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cache_gives_the_same_answer_and_sees_edits(tmp_path: Path) -> None:
    fields = tmp_path / "fields"
    fields.mkdir()
    (fields / "a.yaml").write_text("name: a\norder: x\n")
    (fields / "b.yaml").write_text("name: b\n")
    old = 1_000_000_000
    for p in fields.iterdir():
        os.utime(p, (old, old))
    args = ["validate", "--cache-dir", str(tmp_path / "cache"), "--format", "json", str(fields)]
    first = CliRunner().invoke(main, args)
    again = CliRunner().invoke(main, args)
    assert first.exit_code == again.exit_code == 1
    assert first.stdout == again.stdout
    (fields / "a.yaml").write_text("name: a\norder: 3\n")  # new mtime: the stat memo must not hide it
    fixed = CliRunner().invoke(main, args)
    assert fixed.exit_code == 0, fixed.output
    (tmp_path / "cache").joinpath(next(iter(os.listdir(tmp_path / "cache")))).write_text("{not json")
    assert CliRunner().invoke(main, args).exit_code == 0


def test_the_document_size_counts_every_configured_server_and_the_cache_knows_it(field_repo, tmp_path: Path) -> None:
    field_repo.write("fieldsync.yaml", "prometheus:\n" + "".join(
        f"  - {{name: p{n}, url: 'http://127.0.0.1:{9090 + n}', hostname: prometheus-{n}.example}}\n"
        for n in range(3)))
    field_repo.commit("three servers")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    documents = []
    for args in (["--no-cache"], cache, cache, ["--rev", "HEAD", *cache], ["--rev", "HEAD", *cache]):
        result = CliRunner().invoke(main, ["validate", "--repo", str(field_repo.path), "--format", "json", *args])
        assert result.exit_code == 0, result.output
        documents.append(json.loads(result.stdout)["document"])
    assert all(d == documents[0] for d in documents), documents  # fresh, cached, worktree, commit: one answer
    size = documents[0]
    fields = len(list((field_repo.path / "fields").glob("*.yaml")))
    assert size["servers"] == 3 and size["fields"] == fields and size["estimate"] is True
    assert size["room_for_fields"] == (524288 - size["bytes"]) * fields // size["bytes"] > 100
    text = CliRunner().invoke(main, ["validate", "--repo", str(field_repo.path), *cache]).output
    assert f"Document: about {size['bytes']:,} bytes" in text and "more fields at 3 server(s)." in text, text
    for kept in (tmp_path / "cache").glob("*.contents.json"):  # the contents gone: the files are parsed again
        kept.unlink()
    (field_repo.path / "fieldsync.yaml").write_text(  # another config: a size not measured yet
        "prometheus:\n  - {name: p0, url: 'http://127.0.0.1:9090', hostname: prometheus-0.example}\n")
    result = CliRunner().invoke(main, ["validate", "--repo", str(field_repo.path), "--format", "json", *cache])
    one = json.loads(result.stdout)["document"]
    assert one["servers"] == 1 and one["fields"] == fields and one["bytes"] < size["bytes"], one
    given = CliRunner().invoke(main, ["validate", "--repo", str(field_repo.path), "--format", "json", *cache,
                                      str(field_repo.path / "fields" / "company.yaml")])
    assert json.loads(given.stdout)["document"] is None  # some files (pre-commit): no document to size


# Fast and full validators must agree on every document: the fast one decides, the full one explains.
_keys = sorted(schemas.field_properties()) + ["unknown", "Name"]
_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4),
                    st.sampled_from(["select", "string", "basic", "Basic", "^a$", ""]),
                    st.lists(st.sampled_from(["a", "b", "A", 1]), max_size=3),
                    st.dictionaries(st.sampled_from(["pattern", "min_length", "x"]), st.integers(-1, 2), max_size=2))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(_keys), _values, max_size=6), st.booleans())
def test_fast_validator_agrees_with_jsonschema(doc: dict, with_name: bool) -> None:
    if with_name:
        doc["name"] = "a"
    validator = schemas.validator("field")
    assert validator.is_valid(doc) == (not list(validator.errors(doc)))


def test_validator_without_fast_path_for_unshared_keywords() -> None:
    validator = schemas.Validator({"type": "array", "prefixItems": [{"type": "string"}]})
    assert validator._fast is None
    assert validator.is_valid(["a"]) and not validator.is_valid([1])


def test_the_field_files_reference_lists_every_attribute_with_its_default() -> None:
    readme = (ROOT / "docs" / "reference" / "field-files.md").read_text(encoding="utf-8")
    for name, spec in schemas.field_properties().items():
        default = json.dumps(spec["default"]) if "default" in spec else None
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/reference/field-files.md lacks attribute {name}"
        if default is not None:
            assert f"| {default} |" in row, f"field-files.md: the default of {name} differs from the schema"


@pytest.mark.parametrize("fmt, line", [("text", "a.yaml:2:13: warning: field_type select without options"),
                                       ("github", "::warning file=")])
def test_select_without_options_is_a_warning(tmp_path: Path, fmt: str, line: str) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nfield_type: select\n")
    (tmp_path / "b.yaml").write_text("name: b\nfield_type: select\noptions: []\n")
    result = CliRunner().invoke(main, ["validate", "--no-cache", "--format", fmt, str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert line in result.output and "2 field file(s) valid, 2 warning(s)" in result.output


def test_what_the_old_system_writes_is_valid(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        "name: site\ndisplay_name: Localização do Site\ncategory: [localização, infraestrutura]\n"
        "validation: {required_message: Informe o site, min_length: 1, max_length: 200, regex: '^[a-z]+$'}\n"
        "field_type: select\noptions: [sp, rj, 42]\n")
    result = CliRunner().invoke(main, ["validate", "--no-cache", str(tmp_path)])
    assert result.exit_code == 0 and "1 field file(s) valid" in result.output, result.output


def test_what_javascript_and_yaml_1_2_accept_is_valid(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nvalidation_regex: '\\p{L}+'\n"
                                     "validation: {pattern: '(?<n>a)\\k<n>'}\norder: 010\nplaceholder: 12:30\n")
    result = CliRunner().invoke(main, ["validate", "--no-cache", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_the_files_given_are_checked_against_the_committed_tree(field_repo) -> None:
    """What the pre-commit hook runs: the staged files, named across files against what is committed."""
    fields = field_repo.path / "fields"
    (fields / "Company.yaml").write_text("name: Company\n")  # collides with the committed company.yaml
    (fields / "ok_field.yaml").write_text("name: ok_field\n")
    (fields / "broken_draft.yaml").write_text("name: [\n")  # untracked, not staged: not this commit's business
    result = CliRunner().invoke(main, ["validate", "--no-cache", "--repo", str(field_repo.path),
                                       str(fields / "Company.yaml"), str(fields / "ok_field.yaml")])
    assert result.exit_code == 1, result.output
    assert "already used by fields/company.yaml" in result.output and "broken_draft" not in result.output
    result = CliRunner().invoke(main, ["validate", "--no-cache", "--repo", str(field_repo.path),
                                       str(fields / "ok_field.yaml")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("backup", ["company.yaml~", ".#company.yaml", "#company.yaml#", ".company.yaml.swp"])
def test_editor_backup_files_are_ignored(tmp_path: Path, backup: str) -> None:
    (tmp_path / "company.yaml").write_text("name: company\n")
    (tmp_path / backup).write_text("name: [\n")
    result = CliRunner().invoke(main, ["validate", "--no-cache", str(tmp_path)])
    assert result.exit_code == 0 and "1 field file(s) valid" in result.output, result.output
