"""Container ids and docker-style generated names."""

from __future__ import annotations

import os
import time

_LEFT = ("admiring adoring agitated amazing angry awesome beautiful blissful bold boring "
         "brave busy charming clever compassionate competent condescending confident cool "
         "cranky crazy dazzling determined distracted dreamy eager ecstatic elastic elated "
         "elegant eloquent epic exciting fervent festive flamboyant focused friendly frosty "
         "funny gallant gifted goofy gracious great happy hardcore heuristic hopeful hungry "
         "infallible inspiring intelligent interesting jolly jovial keen kind laughing loving "
         "lucid magical modest musing mystifying naughty nervous nice nifty nostalgic "
         "objective optimistic peaceful pedantic pensive practical priceless quirky quizzical "
         "recursing relaxed reverent romantic sad serene sharp silly sleepy stoic strange "
         "stupefied suspicious sweet tender thirsty trusting unruffled upbeat vibrant "
         "vigilant vigorous wizardly wonderful xenodochial youthful zealous zen").split()
_RIGHT = ("agnesi albattani allen almeida archimedes ardinghelli aryabhata austin babbage "
          "banach bardeen bartik bassi beaver bell bhabha bhaskara blackwell bohr booth borg "
          "bose boyd brahmagupta brattain brown burnell cannon carson cartwright cerf "
          "chandrasekhar chaplygin chatelet chatterjee chebyshev clarke cohen colden cori "
          "cray curie darwin davinci dewdney dhawan diffie dijkstra dirac driscoll dubinsky "
          "easley edison einstein elbakyan elgamal elion ellis engelbart euclid euler "
          "faraday feistel fermat fermi feynman franklin galileo gates goldberg goldstine "
          "goldwasser golick goodall gould greider grothendieck haibt hamilton haslett hawking "
          "heisenberg hellman hermann herschel hertz heyrovsky hodgkin hofstadter hoover "
          "hopper hugle hypatia jackson jang jennings jepsen johnson joliot jones kalam "
          "kapitsa kare keldysh keller kepler khorana kilby kirch knuth kowalevski lalande "
          "lamarr lamport leakey leavitt lederberg lehmann lewin lichterman liskov lovelace "
          "lumiere mahavira margulis matsumoto maxwell mayer mccarthy mcclintock mclaren "
          "mclean mcnulty meitner mendel mendeleev meninsky merkle mestorf mirzakhani "
          "montalcini moore morse moser murdock napier nash neumann newton nightingale "
          "nobel noether northcutt noyce panini pare pascal pasteur payne perlman pike "
          "poincare poitras proskuriakova ptolemy raman ramanujan rhodes ride ritchie "
          "robinson roentgen rosalind rubin saha sammet sanderson satoshi shamir shannon "
          "shaw shirley shockley shtern sinoussi snyder solomon spence stonebraker "
          "sutherland swanson swartz swirles taussig tesla tharp thompson torvalds tu "
          "turing varahamihira vaughan villani visvesvaraya volhard wescoff wilbur wiles "
          "williams williamson wilson wing wozniak wright wu yalow yonath zhukovsky").split()


def new_id() -> str:
    return os.urandom(32).hex()


def random_name(retry: int = 0) -> str:
    r = int.from_bytes(os.urandom(4), "big")
    name = f"{_LEFT[r % len(_LEFT)]}_{_RIGHT[(r >> 12) % len(_RIGHT)]}"
    return name if retry == 0 else f"{name}{r % 10}"


def now_rfc3339(t: float | None = None) -> str:
    """Docker's RFC 3339 with nanoseconds, in UTC."""
    t = time.time() if t is None else t
    secs = int(t)
    nanos = int(round((t - secs) * 1e9))
    if nanos >= 1_000_000_000:
        secs, nanos = secs + 1, nanos - 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def parse_rfc3339(s: str) -> float:
    """Unix seconds of an RFC 3339 time (docker's created/started/finished stamps).

    By hand: time.strptime would import _strptime, datetime, calendar and locale
    (~5 ms) on every `kade ps`."""
    if not s or s.startswith("0001-"):
        return 0.0
    try:
        year, month, day = int(s[0:4]), int(s[5:7]), int(s[8:10])
        hour, minute, sec = int(s[11:13]), int(s[14:16]), int(s[17:19])
    except ValueError:
        raise ValueError(f'invalid RFC 3339 time "{s}"') from None
    rest = s[19:]
    frac = 0.0
    if rest.startswith("."):
        digits = rest[1:len(rest) - len(rest[1:].lstrip("0123456789"))]
        frac = int(digits) / 10 ** len(digits) if digits else 0.0
        rest = rest[1 + len(digits):]
    offset = 0
    if rest[:1] in ("+", "-"):
        offset = (int(rest[1:3]) * 60 + int(rest[4:6])) * 60 * (1 if rest[0] == "+" else -1)
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec \
        - offset + frac


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
