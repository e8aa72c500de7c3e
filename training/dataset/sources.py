"""Human speech from Debian packages: fetched as .debs, unpacked, never installed.

`apt-get download` + `dpkg-deb -x` put each package under the cache; transcripts come from the
`asterisk-core-sounds-<lang>` base packages (`core-sounds-<lang>.txt.gz`), from KLettres'
`sounds.xml` and from KTuberling's `*.soundtheme` (words taken from the file names).

Speaker units: a named asterisk voice talent is one unit, and `en_US_f_Allison` and
`es_MX_f_Allison` are the same person (Allison Smith), hence one unit. KDE recordings are not
labelled by speaker, so every KDE language (KLettres and KTuberling together, regional
variants folded into the base language) is one unit: if one volunteer recorded several of them,
they still never straddle two splits.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

APT_LISTS = Path("/var/lib/apt/lists")

Log = Callable[[str], None]


@dataclass(frozen=True)
class DebPackage:
    """One downloaded Debian package, as recorded in manifest.json."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Text:
    """A transcript line that real and synthetic clips share; `text_id` is global."""

    text_id: str
    language: str
    text: str


@dataclass(frozen=True)
class RealClip:
    """One human recording with its speaker unit and transcript id."""

    clip_id: str
    path: Path
    fmt: str | None  # forced demuxer ("g722" for raw G.722), else probed
    speaker: str
    language: str
    text_id: str
    package: str


@dataclass(frozen=True)
class AsteriskVoice:
    """A voice talent's prompt set inside one asterisk sound package."""

    package: str
    language: str  # key into TRANSCRIPT_PACKAGES
    tag: str  # BCP-47-ish tag written to the manifest
    directory: str  # under /usr/share/asterisk/sounds
    speaker: str
    ext: str


# The 16 kHz G.722 copies are used for the core voices (genuinely wide-band); the 8 kHz -wav
# copies of the same recordings would only duplicate them. Menardi ships no G.722 variant.
ASTERISK_VOICES: tuple[AsteriskVoice, ...] = (
    AsteriskVoice(
        "asterisk-core-sounds-en-g722", "en", "en-US", "en_US_f_Allison", "ast:allison", "g722"
    ),
    AsteriskVoice(
        "asterisk-core-sounds-es-g722", "es", "es-MX", "es_MX_f_Allison", "ast:allison", "g722"
    ),
    AsteriskVoice(
        "asterisk-core-sounds-fr-g722", "fr", "fr-CA", "fr_CA_f_June", "ast:june", "g722"
    ),
    AsteriskVoice(
        "asterisk-core-sounds-it-g722", "it", "it-IT", "it_IT_m_Carlo", "ast:carlo", "g722"
    ),
    AsteriskVoice(
        "asterisk-core-sounds-ru-g722",
        "ru",
        "ru-RU",
        "ru_RU_f_IvrvoiceRU",
        "ast:ivrvoice-ru",
        "g722",
    ),
    AsteriskVoice(
        "asterisk-prompt-it-menardi-wav", "it", "it-IT", "it_IT_f_Menardi", "ast:menardi", "wav"
    ),
)

TRANSCRIPT_PACKAGES = {
    lang: f"asterisk-core-sounds-{lang}" for lang in ("en", "es", "fr", "it", "ru")
}
KDE_PACKAGES = ("klettres-data", "ktuberling-data")


def all_packages() -> list[str]:
    """Every Debian package the builder downloads, in a stable order."""
    names = [v.package for v in ASTERISK_VOICES] + list(TRANSCRIPT_PACKAGES.values())
    return sorted(set(names)) + list(KDE_PACKAGES)


# ---------------------------------------------------------------- apt / dpkg


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_apt_lists(log: Log) -> None:
    """Run `apt-get update` only when no package lists are present at all."""
    if any(APT_LISTS.glob("*_Packages*")):
        return
    log("apt package lists are empty: running apt-get update")
    _run(["apt-get", "update"])


def fetch_deb(name: str, deb_dir: Path, log: Log) -> DebPackage | None:
    """Download `name` into `deb_dir` unless a copy is there; None if apt does not know it."""
    deb_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(deb_dir.glob(f"{name}_*.deb"))
    if not found:
        try:
            _run(["apt-cache", "show", name])
        except subprocess.CalledProcessError:
            log(f"package {name} is not available from apt: skipped")
            return None
        log(f"apt-get download {name}")
        _run(["apt-get", "download", name], cwd=deb_dir)
        found = sorted(deb_dir.glob(f"{name}_*.deb"))
    deb = found[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    return DebPackage(name, version, deb.name, sha256_file(deb), deb.stat().st_size)


def extract_deb(deb: Path, root: Path) -> Path:
    """Unpack a .deb under `root/<package>` once (a marker file makes it resumable)."""
    target = root / deb.name.split("_", 1)[0]
    marker = target / ".extracted"
    if marker.exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(target)])
    marker.write_text(deb.name)
    return target


# ---------------------------------------------------------------- transcripts (pure)


_PROMPT_LINE = re.compile(r"^([\w./\-]+):\s*(.*)$")


def clean_text(text: str) -> str:
    """Drop bracketed stage directions, collapse whitespace."""
    return " ".join(re.sub(r"\[[^\]]*\]", " ", text).split())


def parse_core_sounds(content: str) -> dict[str, str]:
    """`key: text` lines of core-sounds-<lang>.txt; comments, empty and non-speech dropped."""
    prompts: dict[str, str] = {}
    for line in content.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        match = _PROMPT_LINE.match(line.strip())
        if not match:
            continue
        text = clean_text(match.group(2))
        if text and any(ch.isalpha() for ch in text):
            prompts[match.group(1)] = text
    return prompts


_SOUND = re.compile(r'<sound\s+name="([^"]*)"\s+file="([^"]*)"')


def parse_sound_list(xml: str) -> list[tuple[str, str]]:
    """(name, file) of every `<sound name=".." file=".."/>` (KLettres and KTuberling)."""
    return [(html.unescape(n), html.unescape(f)) for n, f in _SOUND.findall(xml)]


def kde_language(code: str) -> tuple[str, str]:
    """A KDE directory code -> (language tag, speaker-unit language). `en_GB` -> (en-GB, en)."""
    base = re.split(r"[_@]", code, maxsplit=1)[0]
    return code.replace("_", "-"), base


def ktuberling_word(filename: str) -> str:
    """`egypte_chameau.wav` -> `chameau`; `boucle-d-oreille.wav` -> `boucle d oreille`."""
    stem = Path(filename).stem
    word = stem.split("_", 1)[1] if "_" in stem else stem
    return " ".join(word.replace("-", " ").split())


def ktuberling_text(code: str, name: str, filename: str) -> str | None:
    """The spoken word of a KTuberling sound, or None when the file name does not give it.

    Many translations keep the English key as the file name (`ru/eyebrow.ogg` says a Russian
    word); only English, or a file name that differs from the key, is taken as the transcript.
    """
    word = ktuberling_word(filename)
    if not word:
        return None
    if kde_language(code)[1] != "en" and word == ktuberling_word(name):
        return None
    return word


def _slug(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]


# ---------------------------------------------------------------- catalogues


def read_transcripts(roots: dict[str, Path]) -> dict[str, dict[str, str]]:
    """language -> {prompt key: text} from the unpacked transcript packages."""
    out: dict[str, dict[str, str]] = {}
    for lang, package in TRANSCRIPT_PACKAGES.items():
        root = roots.get(package)
        if root is None:
            continue
        path = root / f"usr/share/doc/{package}/core-sounds-{lang}.txt.gz"
        if path.exists():
            out[lang] = parse_core_sounds(gzip.decompress(path.read_bytes()).decode("utf-8"))
    return out


def asterisk_catalogue(
    roots: dict[str, Path], transcripts: dict[str, dict[str, str]]
) -> tuple[list[RealClip], dict[str, Text]]:
    """Asterisk prompts that have a transcript line; text ids are `ast:<lang>:<prompt key>`.

    Menardi has no transcript of her own; her prompts share the core Italian prompt keys and are
    matched through them (same prompt, possibly slightly different wording).
    """
    clips: list[RealClip] = []
    texts: dict[str, Text] = {}
    for voice in ASTERISK_VOICES:
        root = roots.get(voice.package)
        prompts = transcripts.get(voice.language, {})
        if root is None or not prompts:
            continue
        base = root / "usr/share/asterisk/sounds" / voice.directory
        for path in sorted(base.rglob(f"*.{voice.ext}")):
            key = path.relative_to(base).with_suffix("").as_posix()
            if key not in prompts:
                continue
            text_id = f"ast:{voice.language}:{key}"
            texts[text_id] = Text(text_id, voice.tag, prompts[key])
            clips.append(
                RealClip(
                    clip_id=f"real-{_slug(voice.speaker, voice.package, key)}",
                    path=path,
                    fmt="g722" if voice.ext == "g722" else None,
                    speaker=voice.speaker,
                    language=voice.tag,
                    text_id=text_id,
                    package=voice.package,
                )
            )
    return clips, texts


def kde_catalogue(roots: dict[str, Path]) -> tuple[list[RealClip], dict[str, Text]]:
    """KLettres letters/syllables and KTuberling words; text ids `kl:<code>:..`/`kt:<code>:..`.

    Every recording is listed; `texts` only holds the transcripts that are actually known.
    """
    clips: list[RealClip] = []
    texts: dict[str, Text] = {}
    sources = (
        ("klettres-data", "kl", "usr/share/klettres", "*/sounds.xml"),
        ("ktuberling-data", "kt", "usr/share/ktuberling/sounds", "*.soundtheme"),
    )
    for package, corpus, subdir, pattern in sources:
        root = roots.get(package)
        if root is None:
            continue
        base = root / subdir
        for listing in sorted(base.glob(pattern)):
            code = listing.parent.name if corpus == "kl" else listing.stem
            tag, unit_lang = kde_language(code)
            for name, rel in parse_sound_list(listing.read_text(encoding="utf-8")):
                path = base / rel
                if not path.exists():
                    continue
                text = name if corpus == "kl" else ktuberling_text(code, name, rel)
                text_id = f"{corpus}:{code}:{name}"
                if text:  # otherwise a real clip only: nothing to synthesise from
                    texts[text_id] = Text(text_id, tag, text)
                clips.append(
                    RealClip(
                        clip_id=f"real-{_slug(corpus, code, rel)}",
                        path=path,
                        fmt=None,
                        speaker=f"kde:{unit_lang}",
                        language=tag,
                        text_id=text_id,
                        package=package,
                    )
                )
    return clips, texts
