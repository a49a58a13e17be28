"""The `xpnet` command: train, evaluate, predict, export, vanishing, info and gradcheck.

Exit status: 0 done; 1 gradcheck found a wrong gradient, or xpnet hit a bug (shown with its
traceback); 2 a user mistake (a file that is missing or malformed, an option that does not
parse, an unusable backend or device, a corrupt checkpoint, a net too big for the memory),
said in one line on stderr; 3 training diverged (a non-finite loss), said in one line; 130
interrupted (Ctrl-C), 143 terminated (SIGTERM), each after saving what there is to save.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from ..distributed import CommunicatorError
from . import parallel
from .errors import COMMANDS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from .evaluate import cmd_evaluate, cmd_predict
from .export import cmd_export
from .gradcheck import cmd_gradcheck
from .info import cmd_info
from .options import TrainOptions
from .parser import Parser, build_parser
from .pipes import reader_may_leave
from .signals import exit_status, terminate_as_interrupt
from .train import cmd_train
from .vanishing import cmd_vanishing

__all__ = [
    "Parser",
    "TrainOptions",
    "UsageError",
    "build_parser",
    "cmd_evaluate",
    "cmd_export",
    "cmd_gradcheck",
    "cmd_info",
    "cmd_predict",
    "cmd_train",
    "cmd_vanishing",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is 0 done, 1 gradcheck failed, 2 a user mistake (one
    line on stderr), 3 training diverged, 130 interrupted, 143 terminated (SIGTERM). Bugs
    raise, with their traceback. Under a launcher (`mpiexec -n N xpnet train`) an error on any
    rank ends every rank."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        with terminate_as_interrupt(), reader_may_leave():
            return args.run(args) or EXIT_OK
    except UsageError as err:
        return _fail(_command(argv), err)
    except (ValueError, OSError, CommunicatorError) as err:  # DataError, BackendError, ...
        return _fail(_command(argv), err)
    except MemoryError:  # what the up-front estimate did not foresee
        return _fail(
            _command(argv),
            UsageError("out of memory; use a smaller net (--hidden), batch or dataset"),
        )
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM outside training's own handling
        status = exit_status(stop)
        parallel.before_report()
        print(f"xpnet: interrupted{parallel.where()}", file=sys.stderr)
        parallel.end_job(status)
        return status
    except Exception:  # a bug: in a group, its traceback and the end of every rank
        if parallel.where():
            traceback.print_exc()
            print(f"{_command(argv)}: internal error{parallel.where()}", file=sys.stderr)
            parallel.end_job(EXIT_FAILED)
        raise


def _command(argv: Sequence[str]) -> str:
    """ "xpnet train" etc. for error messages; plain "xpnet" before a known command."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return f"xpnet {first}" if first in COMMANDS else "xpnet"


def _fail(command: str, err: BaseException, status: int = EXIT_USAGE) -> int:
    """Say what went wrong in one line (naming the rank in a group) and return `status`; in a
    group, end every rank with it."""
    if isinstance(err, OSError) and err.strerror:
        message = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    else:
        message = str(err)
    parallel.before_report()
    print(f"{command}: error{parallel.where()}: {' '.join(message.split())}", file=sys.stderr)
    parallel.end_job(status)
    return status
