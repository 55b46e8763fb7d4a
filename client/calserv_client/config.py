"""Where the server URL and the observatory key come from — never the command line.

Order: ``--hashtag-file`` > ``CALSERV_HASHTAG`` > ``hashtag`` in the config file; ``--url`` >
``CALSERV_URL`` > ``url`` in the config file > http://127.0.0.1:5000. The config file is
``--config FILE``, else ``$CALSERV_CONFIG``, else ``~/.config/calserv/config.ini``::

    [calserv]
    url = https://calserv.example.org
    hashtag = ...
"""

from __future__ import annotations

import configparser
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from calserv_client.api import DEFAULT_URL

KEY_HELP = (
    "set the CALSERV_HASHTAG environment variable, put `hashtag = ...` in the [calserv] section "
    "of ~/.config/calserv/config.ini (chmod 600), or pass --hashtag-file FILE"
)


class ConfigError(Exception):
    """The settings are missing or unreadable; the message says how to fix it."""


@dataclass(frozen=True)
class Settings:
    url: str
    hashtag: str = ""
    source: str = ""  # where the key came from, for messages (never the key itself)

    def __repr__(self) -> str:
        return f"Settings(url={self.url!r}, hashtag=<from {self.source or 'nowhere'}>)"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "calserv" / "config.ini"


def _read_config(path: Path, explicit: bool) -> dict[str, str]:
    if not path.is_file():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    if not parser.has_section("calserv"):
        if explicit:
            raise ConfigError(f"config file {path} has no [calserv] section")
        return {}
    values = {k: v.strip() for k, v in parser.items("calserv")}
    if values.get("hashtag") and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"calserv: warning: {path} holds your key and is readable by others; chmod 600 it",
            file=sys.stderr,
        )
    return values


def read_key_file(path: str | Path) -> str:
    try:
        lines = Path(path).read_text(encoding="utf-8").split()
    except OSError as e:
        raise ConfigError(f"cannot read hashtag file {path}: {e.strerror}") from None
    if not lines:
        raise ConfigError(f"hashtag file {path} is empty")
    return lines[0]


def load_settings(
    url: str | None = None,
    config: str | Path | None = None,
    hashtag_file: str | Path | None = None,
    require_key: bool = True,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Resolve the URL and key as described in the module docstring."""
    env = os.environ if environ is None else environ
    explicit = config is not None or bool(env.get("CALSERV_CONFIG"))
    path = Path(config or env.get("CALSERV_CONFIG") or default_config_path()).expanduser()
    values = _read_config(path, explicit)
    url = url or env.get("CALSERV_URL") or values.get("url") or DEFAULT_URL
    if hashtag_file:
        key, source = read_key_file(hashtag_file), f"--hashtag-file {hashtag_file}"
    elif env.get("CALSERV_HASHTAG", "").strip():
        key, source = env["CALSERV_HASHTAG"].strip(), "CALSERV_HASHTAG"
    elif values.get("hashtag"):
        key, source = values["hashtag"], str(path)
    else:
        key, source = "", ""
    if require_key and not key:
        raise ConfigError(f"no observatory key (hashtag) configured: {KEY_HELP}")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the calserv URL must start with http:// or https://, got {url!r}")
    return Settings(url=url.rstrip("/"), hashtag=key, source=source)
