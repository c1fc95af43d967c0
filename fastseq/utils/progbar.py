"""The Keras 3 progress bar (``keras.utils.Progbar``).

verbose=1 on a terminal redraws one line in place::

    391/391 ━━━━━━━━━━━━━━━━━━━━ 12s 30ms/step - acc: 0.8000 - loss: 0.4000

When stdout is not a terminal (a log file, a pipe, CI), there is no cursor to move back, so
only the finished line is printed (no carriage returns, no colour codes), one line per bar.
verbose=2 prints only the finished line, Keras's short form::

    391/391 - 12s - 30ms/step - acc: 0.8000 - loss: 0.4000
"""
import math
import os
import sys
import time

__all__ = ["Progbar"]

_BAR_CHAR = "\u2501"  # '━', as Keras 3


def _stdout_is_dynamic(stream):
    return ((hasattr(stream, "isatty") and stream.isatty()) or "ipykernel" in sys.modules
            or "PYCHARM_HOSTED" in os.environ)


def _can_encode(stream, text):
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


class Progbar:
    """A progress bar, as ``keras.utils.Progbar``.

    Args:
        target: total number of steps expected, None if unknown.
        width: bar width in characters.
        verbose: 0 silent, 1 the bar, 2 one line when finished.
        interval: minimum seconds between two redraws.
        stateful_metrics: names of metrics shown as given; other metrics are averaged
            over the steps of the bar (weighted by steps), as Keras does.
        unit_name: the unit in the time per unit (``30ms/step``).
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 unit_name="step"):
        if target is not None:
            if isinstance(target, bool) or not isinstance(target, (int,)) and not hasattr(
                    target, "__index__"):
                raise TypeError(f"Progbar: target must be an int or None, got "
                                f"{type(target).__name__}")
            target = int(target)
            if target < 0:
                raise ValueError(f"Progbar: target must be >= 0, got {target}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"Progbar: verbose must be 0, 1 or 2, got {verbose!r}")
        self.target = target
        self.width = int(width)
        self.verbose = verbose
        self.interval = float(interval)
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics) if stateful_metrics else set()
        self._stream = sys.stdout
        self._dynamic_display = _stdout_is_dynamic(self._stream)
        self._bar_char = _BAR_CHAR if _can_encode(self._stream, _BAR_CHAR) else "="
        self._seen_so_far = 0
        self._values = {}
        self._values_order = []
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    # ------------------------------------------------------------------ public
    def update(self, current, values=None, finalize=None):
        """Move the bar to step ``current``.

        values: ``[(name, value_for_last_step), ...]``. Names in ``stateful_metrics`` are
            shown as given; the others are averaged over the steps seen so far (at
            ``finalize`` the value given replaces the average, as Keras does).
        finalize: whether this is the last update; default ``current >= target``."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or []:
            if name not in self._values_order:
                self._values_order.append(name)
            if name in self.stateful_metrics or finalize:
                self._values[name] = [value, 1]
            else:
                steps = max(current - self._seen_so_far, 1)
                if name in self._values:
                    self._values[name][0] += value * steps
                    self._values[name][1] += steps
                else:
                    self._values[name] = [value * steps, steps]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if not finalize and (now - self._last_update < self.interval
                                 or not self._dynamic_display):
                return
            self._write_bar_line(current, finalize, now, time_per_unit)
        elif self.verbose == 2 and finalize:
            self._write(self._short_line(current, now, time_per_unit) + "\n")
        self._last_update = now

    def add(self, n, values=None):
        """Advance the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    # ------------------------------------------------------------------ formatting
    def _write(self, text):
        stream = sys.stdout  # looked up now, as Keras's print_msg (redirect_stdout works)
        stream.write(text)
        stream.flush()

    def _count(self, current):
        digits = int(math.log10(self.target)) + 1 if self.target else 1
        return f"{current:{digits}d}/{self.target}"

    def _metrics_text(self):
        text = ""
        for name in self._values_order:
            total, count = self._values[name]
            try:
                avg = float(total) / max(1, count)
            except (TypeError, ValueError):
                text += f" - {name}: {total}"
                continue
            text += f" - {name}: {avg:.4f}" if abs(avg) > 1e-3 else f" - {name}: {avg:.4e}"
        return text

    def _write_bar_line(self, current, finalize, now, time_per_unit):
        color = self._dynamic_display
        bold = (lambda s: f"\x1b[1m{s}\x1b[0m") if color else (lambda s: s)
        if self.target is not None and self.target > 0:
            filled = int(self.width * min(current / self.target, 1.0))
            done = self._bar_char * filled
            todo = self._bar_char * (self.width - filled)
            if color:
                done = f"\x1b[32m{done}\x1b[0m" if filled else ""
                todo = f"\x1b[37m{todo}\x1b[0m"
            elif filled < self.width:
                todo = "." * (self.width - filled)
            bar = f"{bold(self._count(current))} {done}{todo}"
            plain_bar = f"{self._count(current)} " + "x" * self.width
        else:
            bar = plain_bar = f"{current:7d}/Unknown"
        if self.target is not None and self.target > 0 and not finalize:
            eta = time_per_unit * (self.target - current)
            if eta > 3600:
                eta_text = f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
            elif eta > 60:
                eta_text = f"{int(eta // 60)}:{int(eta % 60):02d}"
            else:
                eta_text = f"{int(eta)}s"
        else:
            eta_text = f"{now - self._start:.0f}s"
        info = f" {bold(eta_text)}" + self._format_time(time_per_unit) + self._metrics_text()
        plain_info = f" {eta_text}" + self._format_time(time_per_unit) + self._metrics_text()

        total_width = len(plain_bar) + len(plain_info)
        if self._dynamic_display:
            line = "\r" + bar + info
            if self._prev_total_width > total_width:
                line += " " * (self._prev_total_width - total_width)
        else:
            line = bar + info
        if finalize:
            line += "\n"
        self._write(line)
        self._prev_total_width = total_width

    def _short_line(self, current, now, time_per_unit):
        count = self._count(current) if self.target else f"{current}"
        return (f"{count} - {now - self._start:.0f}s -"
                f"{self._format_time(time_per_unit)}{self._metrics_text()}")

    def _format_time(self, time_per_unit):
        if time_per_unit >= 1 or time_per_unit == 0:
            return f" {time_per_unit:.0f}s/{self.unit_name}"
        if time_per_unit >= 1e-3:
            return f" {time_per_unit * 1e3:.0f}ms/{self.unit_name}"
        return f" {time_per_unit * 1e6:.0f}us/{self.unit_name}"

    def _estimate_step_duration(self, current, now):
        # The first step (compilation, warm-up) is left out of the estimate once there are
        # more steps, as Keras does.
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit
