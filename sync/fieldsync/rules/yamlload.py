"""Strict, safe YAML 1.2 loading (the core schema, as editors, check-jsonschema and ajv read YAML): libyaml when
present, no aliases or merge keys, no duplicate or non-string keys."""

from __future__ import annotations

from typing import Any

import yaml
import yamlcore

_Loader: type = getattr(yamlcore, "CCoreLoader", yamlcore.CoreLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(Exception):
    """A YAML problem at a 1-based line and column."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def _fail(message: str, node: yaml.Node) -> YamlError:
    return YamlError(message, node.start_mark.line + 1, node.start_mark.column + 1)


class _StrictLoader(_Loader):
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects:  # the same node reached twice: an alias
            raise _fail("this anchored value is reused through an alias (*name); anchors and aliases are not "
                        "allowed in field files, write the value out", node)
        return super().construct_object(node, deep)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:  # checked on the nodes, before the constructor's own, less precise, errors
            if key_node.tag == _MERGE_TAG or (isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<"
                                              and not key_node.style):  # plain, not quoted
                raise _fail("YAML merge keys (<<) are not allowed in field files; write the keys out", key_node)
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in first:
                    raise _fail(f"duplicate key '{key_node.value}' (first defined on line {first[key_node.value]}); "
                                "keep one", key_node)
                first[key_node.value] = key_node.start_mark.line + 1
        mapping = super().construct_mapping(node, deep)
        for key_node, _ in node.value:
            if not isinstance(self.constructed_objects[key_node], str):
                raise _fail(f"key {key_node.value!r} must be a string (quote it)", key_node)
        return mapping


def load(text: str) -> Any:
    """Parse one YAML document safely; raise YamlError with a location on any problem."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        message = " ".join(str(part) for part in (e.context, e.problem) if part)
        if "could not determine a constructor for the tag" in message:
            message = f"unsupported YAML tag {str(e.problem).rsplit(' ', 1)[-1]}: field files hold plain data only"
        raise YamlError(f"YAML: {message}", mark.line + 1 if mark else 1, mark.column + 1 if mark else 1) from None
    except yaml.reader.ReaderError as e:  # located by character offset, not by mark
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise YamlError(f"control character {e.character!r} is not allowed; remove it", line, column) from None
    except yaml.YAMLError as e:
        raise YamlError(f"YAML: {e}") from None
    except RecursionError:
        raise YamlError("YAML nesting is too deep") from None
    finally:
        loader.dispose()


def locate(text: str, path: tuple[Any, ...], at_key: bool = False) -> tuple[int, int]:
    """1-based (line, column) of the value at `path` in a YAML text, or of its key when `at_key`.

    Falls back to the deepest part of the path that exists.
    """
    node = yaml.compose(text, Loader=_Loader)
    if node is None:  # an empty document
        return 1, 1
    mark = node.start_mark
    for i, step in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == step), None)
            if pair is None:
                break
            mark = pair[0].start_mark if (last and at_key) else pair[1].start_mark
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1
