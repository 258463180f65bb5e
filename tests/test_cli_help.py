"""Every option of both command lines says what it does, and its default where it has one."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def walk(parser: argparse.ArgumentParser, path=()):
    """(command path, action) for every option of a parser and its sub-parsers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, (*path, name))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def bci_stream_parser():
    from bci_stream.cli import build_parser

    return build_parser()


def bci_train_parser():
    from offline_training.cli import build_parser

    return build_parser()


@pytest.mark.parametrize("make", [bci_stream_parser, bci_train_parser], ids=["bci-stream", "bci-train"])
def test_every_option_has_help_and_shows_its_default(make):
    missing = [f"{' '.join(path)} {action.dest}" for path, action in walk(make()) if not action.help]
    assert not missing, f"options without help: {missing}"
    for path, action in walk(make()):
        if action.option_strings and action.default not in (None, argparse.SUPPRESS, False):
            command = make()
            text = (command._subparsers._group_actions[0].choices[path[0]] if path else command).format_help()
            entry = "".join(option_entry(text, action, command).split()).replace("default:", "default")  # wrapped
            value = re.escape(str(action.default).replace(" ", ""))  # its own default, whole: 1 is not 10 or 1.0
            assert re.search(rf"default{value}(?!\.?\d)", entry), f"{path} {action.dest}: {entry}"


def option_entry(text: str, action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    """The part of a help page that describes ``action``: from its invocation (``--opt X``) to the next
    option's, so another option's default cannot stand in for its own."""
    start = text.index("  " + parser._get_formatter()._format_action_invocation(action))
    following = re.search(r"\n  -", text[start + 2:])
    return text[start : start + 2 + following.start()] if following else text[start:]


def all_help_pages(parser: argparse.ArgumentParser):
    """(command path, help text) of a parser and every sub-parser."""
    yield (), parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from (((name, *path), text) for path, text in all_help_pages(child))


@pytest.mark.parametrize("make", [bci_stream_parser, bci_train_parser], ids=["bci-stream", "bci-train"])
def test_no_help_page_says_default_none(make):
    """An option without a default says what happens without it; "(default: None)" after that is noise."""
    pages = list(all_help_pages(make()))
    assert len(pages) > 5
    said = [" ".join(path) for path, text in pages if "default:None" in "".join(text.split())]
    assert not said, f"'(default: None)' in the help of: {said}"


def test_global_options_work_before_and_after_the_command():
    parser = bci_stream_parser()
    before = parser.parse_args(["--local", "-v", "info", "m.onnx"])
    after = parser.parse_args(["info", "m.onnx", "--local", "-v", "--lsl-session", "lab"])
    assert before.local and before.verbose and after.local and after.verbose and after.lsl_session == "lab"
    assert not parser.parse_args(["info", "m.onnx"]).local


def test_version_and_help_import_no_heavy_module():
    """What keeps them quick (tests never time): torch, onnxruntime, scipy.signal, Qt and mne stay unloaded."""
    from bci_stream import __version__

    out = subprocess.run([sys.executable, "-m", "bci_stream.cli", "--version"], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == f"bci-stream {__version__}"
    help_text = subprocess.run([sys.executable, "-m", "bci_stream.cli", "live", "--help"], capture_output=True,
                               text=True, cwd=ROOT, check=True).stdout
    assert "examples:" in help_text and "(default:continuous)" in "".join(help_text.split())
    heavy = {"torch", "onnxruntime", "scipy.signal", "PyQt6", "mne"}
    for args in (["--version"], ["--help"], ["live", "--help"]):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "bci_stream.cli", *args], capture_output=True,
                             text=True, cwd=ROOT, check=True)
        loaded = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
        assert "bci_stream.commands._common" in loaded, "the import log was not read"  # the check below can fail
        assert not loaded & heavy, f"{args} imports {loaded & heavy}"


def test_bci_train_help_imports_no_heavy_module_lists_the_data_specs_and_its_teacher_defaults_are_the_configs():
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "offline_training.cli", "--help"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "bci_stream.commands._common" in loaded, "the import log was not read"  # the check below can fail
    assert not loaded & {"torch", "scipy.signal", "scipy.stats", "ray", "mne"}, "bci-train --help imports heavy modules"
    assert "data SPECs" in out.stdout and "bids:ROOT" in out.stdout and "mapping FILE" in out.stdout
    from dataclasses import asdict

    from offline_training.cli import TEACHER_DEFAULTS
    from offline_training.training.teacher import TeacherConfig

    assert {k: asdict(TeacherConfig())[k] for k in TEACHER_DEFAULTS} == TEACHER_DEFAULTS  # the twins agree


def test_the_training_commands_default_student_is_the_training_configs():
    """One home for the default student: `bci-train fit` and `run` take it from TrainConfig."""
    from offline_training.training.config import TrainConfig

    students = {" ".join(path): action.default for path, action in walk(bci_train_parser())
                if action.dest == "student" and path[0] in ("fit", "run")}
    assert students and set(students.values()) == {TrainConfig().student} == {"ccanet"}, students
