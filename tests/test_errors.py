"""User-facing errors end as one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import errno

import click
import pytest
from click.testing import CliRunner

from vidm_rt.cli import main
from vidm_rt.errors import missing_dependency_message, user_errors


def _assert_clean_exit_2(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert all(f in lines[0] for f in fragments), result.output


def _deep(exc: BaseException, depth: int = 3) -> None:
    if depth == 0:
        raise exc
    _deep(exc, depth - 1)


@click.command()
@click.argument("kind")
@user_errors
def _command(kind: str) -> None:
    _deep({"oserror": PermissionError(errno.EACCES, "Permission denied", "/data/clip.npy"),
           "value": ValueError("--frames must be at least 2: pass --frames 2 or more"),
           "import": ModuleNotFoundError("No module named 'imageio'", name="imageio")}[kind])


@pytest.mark.parametrize("kind, fragments", [
    ("oserror", ("Permission denied", "/data/clip.npy")),
    ("value", ("--frames must be at least 2",)),
    ("import", ("needs imageio", "pip install 'vidm-rt[video]'")),
])
def test_user_errors_turns_each_error_kind_into_one_line(kind, fragments) -> None:
    _assert_clean_exit_2(CliRunner().invoke(_command, [kind]), *fragments)


def test_other_exceptions_are_bugs_and_keep_their_traceback() -> None:
    @click.command()
    @user_errors
    def broken() -> None:
        _deep(KeyError("bug"))

    result = CliRunner().invoke(broken, [])
    assert isinstance(result.exception, KeyError)


def test_an_oserror_deep_inside_train_is_one_line_and_exit_2(tmp_path) -> None:
    """The run folder cannot be created (its parent is a file): the OSError comes from deep
    inside training, after the data and the models are set up."""
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run"
    result = CliRunner().invoke(main, ["train", "--steps", "1", "--batch", "1", "--quiet",
                                       "--out", str(out)])
    _assert_clean_exit_2(result, str(out))
    assert not out.exists()


@pytest.mark.parametrize("error, line", [
    (ModuleNotFoundError("No module named 'imageio'", name="imageio"),
     "this command needs imageio: pip install 'vidm-rt[video]' (for torch, install "
     "torch==2.13.0 first on CPU-only machines)"),
    # A submodule is looked up by its top-level package.
    (ModuleNotFoundError("x", name="cuda.bindings.runtime"),
     "this command needs cuda.bindings.runtime: pip install 'vidm-rt[gpu]'"),
    # A module of no extra: the base runtime; without a name, the error's text says what.
    (ModuleNotFoundError("x", name="onnxruntime"), "pip install 'vidm-rt[cpu]'"),
    (ImportError("libcudart.so.12: cannot open shared object file"),
     "this command needs libcudart.so.12: cannot open shared object file: pip install "
     "'vidm-rt[cpu]'"),
])
def test_the_missing_dependency_line_names_the_extra(error, line) -> None:
    assert line in missing_dependency_message(error)
