"""Named people in a prompt: the policy's list (also disguised or misspelt), NER
persons, and names as written (runs of capitalised words that begin with a given
name or a title and are no place, title or artist credited for a style).

A named person is fixed (the planner does not diversify them) and is reported as
``public_figure``. Pure Python and data files; no model."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from .vocabulary import AGE_WORDS, GENDER_WORDS, NOT_NAMES, RACE_WORDS, _NAME_GAP, _TOKEN, _WORD, lexicon


@lru_cache(maxsize=64)
def _figures_regex(names: tuple[str, ...]) -> re.Pattern | None:
    if not names:
        return None
    body = "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


def _disguised(prompt: str, names: tuple[str, ...]) -> list[tuple[int, int, str, float]]:
    """The policy's names written to slip past a plain match (look-alike letters, emoji
    letters, spaced, stretched or leetspeak spelling), found in elens-lexicon's folded
    text and located in the original prompt. Read as the lexicon reads terms, and also
    with stretched letters squeezed ("Taaaaylor"); a spelled-out name may end in "a"
    ("B a r a c k O b a m a")."""
    folding = _folded_names(names)
    if folding is None:
        return []
    regex, squashed, readings = folding
    found: dict[tuple[int, int], str] = {}
    for folded, offsets in readings(prompt, squeeze=True):
        for m in regex.finditer(folded):
            span = (offsets[m.start()], offsets[m.end() - 1] + 1)
            found.setdefault(span, squashed.get(re.sub(r"\s+", "", m.group(0)), m.group(0)))
    return [(start, end, name, 1.0) for (start, end), name in found.items()]


@lru_cache(maxsize=8)
def _folded_names(names: tuple[str, ...]) -> tuple[re.Pattern, dict[str, str], Any] | None:
    try:
        from elens_lexicon.normalize import fold_term, readings
    except ImportError:  # elens-lexicon is optional here: plain matching still works
        return None
    terms = {t: n for n in names if (t := fold_term(n))}
    if not terms:
        return None
    # Spelled-out names lose their spaces when folded ("E l o n M u s k" -> "eionmusk").
    body = "|".join(re.escape(t).replace(r"\ ", r"\s*") for t in sorted(terms, key=len, reverse=True))
    squashed = {t.replace(" ", ""): n for t, n in terms.items()}
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)"), squashed, readings


@lru_cache(maxsize=8)
def _name_speller(names: tuple[str, ...]) -> tuple[Any, Any, dict[str, list[tuple[str, ...]]]] | None:
    try:
        from elens_lexicon.spelling import Speller, english_words
    except ImportError:  # elens-lexicon is optional here
        return None
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for name in sorted(names, key=len, reverse=True):  # "Kim Jong Un" before a "Kim Jong"
        words = tuple(w.lower() for w in _WORD.findall(name))
        if len(words) >= 2:  # one word alone ("Beyonce") is too easily another word misspelt
            by_first.setdefault(words[0], []).append(words)
    speller = Speller({w for group in by_first.values() for parts in group for w in parts}, english_words())
    # Prompts repeat their words ("portrait", "woman"): each is looked up once.
    near = lru_cache(maxsize=65536)(lambda word: frozenset(speller.candidates(word, known=True)))
    misspelt = lru_cache(maxsize=65536)(lambda word: frozenset(speller.candidates(word)))
    return near, misspelt, by_first


def _misspelt(prompt: str, names: tuple[str, ...]) -> list[tuple[int, int, str, float]]:
    """The policy's names of two or more words with slips in them (``Barak Obamma``,
    ``Tayolr Swfit``): each word is the name's word or one slip from it
    (elens-lexicon's speller rules: first letter kept, four letters or more), and at
    least one slip is no English word, so "Joe Bidden" and "Tom Hawks" stay people
    of their own. Score 0.85, as the lexicon scores a misspelt term."""
    spelling = _name_speller(names)
    if spelling is None:
        return []
    near, slips, by_first = spelling
    canonical = {tuple(w.lower() for w in _WORD.findall(n)): n for n in names}
    tokens = list(_WORD.finditer(prompt))
    words = [t.group(0).lower() for t in tokens]
    readings = [near(w) | {w} for w in words]  # a word, or a name's word it may be a slip for
    misspelt = [slips(w) for w in words]  # ... a slip that is no English word
    found = []
    for i in range(len(tokens)):
        for first in readings[i] & by_first.keys():
            for parts in by_first[first]:
                span = range(i, i + len(parts))
                if (span.stop <= len(tokens) and all(p in readings[k] for k, p in zip(span, parts))
                        and any(p in misspelt[k] for k, p in zip(span, parts))
                        and all(_NAME_GAP.fullmatch(prompt[tokens[k].end():tokens[k + 1].start()])
                                for k in span[:-1])):
                    found.append((tokens[i].start(), tokens[span.stop - 1].end(), canonical[parts], 0.85))
                    break  # the longest name that starts here
    return found


#: Words before a name that make it one: "Mrs Lopez", "Dr. Elaine Ford", "Coach Reyes"
#: (a role among them only before a word that is no English word or a given name).
TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "aunt", "auntie", "uncle",
          "coach", "officer", "detective", "sergeant", "sgt", "rev", "reverend", "president", "senator",
          "governor", "mayor", "judge", "pastor", "doctor", "nurse", "captain"}
#: Titles that also begin other names ("Queen Anne style", "Lady Liberty"): a given name must follow.
GIVEN_NAME_TITLES = {"king", "queen", "prince", "princess", "lady", "lord"}
#: The last word of a place's, a building's, an event's or a firm's name, seldom a surname's.
NOT_NAME_ENDS = {
    "center", "centre", "street", "avenue", "road", "boulevard", "square", "plaza", "bridge", "tower", "house",
    "palace", "castle", "cathedral", "church", "temple", "mosque", "shrine", "museum", "gallery", "library",
    "station", "airport", "stadium", "arena", "theater", "theatre", "hotel", "cafe", "restaurant", "market",
    "mall", "island", "islands", "bay", "beach", "coast", "valley", "canyon", "desert", "forest", "mountains",
    "falls", "river", "sea", "ocean", "memorial", "monument", "week", "month", "festival", "awards", "cup",
    "league", "company", "records", "studios", "university", "college", "institute", "foundation", "harbour",
    "harbor", "port", "pier", "wharf", "bank",
}
#: A capitalised word after a name that credits it for a style ("Akira Kurosawa Style").
CREDIT_ENDS = {"style", "aesthetic", "inspired", "photography", "vibe", "vibes", "cinematography"}
# A word of a name as written: letters of any script, "'" and "-" inside ("O'Neal", "Ocasio-Cortez").
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*(?:['’]s?)?")
#: Lower-case words that end a run of capitalised words in Title Case ("Forest With Glowing Mushrooms").
RUN_BREAKERS = {"with", "for", "from", "by", "to", "at", "under", "over", "into", "near", "as", "is", "are", "was",
                "his", "her", "my", "your", "their", "its", "our", "this", "that", "or", "but", "vs", "feat",
                "featuring", "while", "during", "after", "before", "without"}
_POSSESSIVE = re.compile(r"['’]s?$")
# Whoever a style is credited to is not in the picture: "art by Artgerm and Greg
# Rutkowski", "in the style of Edward Hopper", "a Wes Anderson film". A bare "by" is
# credit only where a clause starts or after a word for a work ("attacked by" is not).
_CREDITED_BEFORE = re.compile(
    r"(?:(?:(?:^|[,;:(|])\s*|\b(?:art|artwork|artworks|painting|paintings|painted|drawing|drawn|illustration|illustrated"
    r"|photo|photograph|photographed|photography|shot|sketch|sketched|render|rendered|design|designed|directed"
    r"|film|movie|inspired|influenced|poster|print|comic|cover|sculpture|sculpted|mural|animation|animated"
    r"|work|works|masterpiece|style|made|created|concept)\s+)by\s+|\b(?:style|manner|vein|tradition|school) of\s+"
    r"(?:the\s+)?|\b(?:à|a) la\s+)$", re.IGNORECASE)
_CREDIT_LIST = re.compile(r"(?:[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*)*\s*(?:,|&|\band\b)\s*)*$")
_CREDITED_AFTER = re.compile(
    r"\s*(?:['’]s\s+)?(?:-?\s*style|-?\s*esque|aesthetic|vibes?|cinematography|colou?r grade|colou?r palette"
    r"|photography|inspired|concept art|architecture)\b", re.IGNORECASE)
# A work after the name, as a tag ("Edgar Degas pastel,") or after "a" ("a Hype Williams
# video"): "Frida Kahlo painting a self-portrait" is her, painting.
_WORK_AFTER = re.compile(r"\s*(?:['’]s\s+)?(?:painting|illustration|artwork|sketch|drawing|video|film|movie|"
                         r"lighting|pastel|landscape|print|poster|photo|photograph)s?(?:\s+style)?\s*(?:[,;|\n]|$)",
                         re.IGNORECASE)
_ARTICLE_BEFORE = re.compile(r"\b(?:a|an)\s+$", re.IGNORECASE)
# A place, not a person: "in Nova Scotia", "over Victorian London" ("at" and "on" may
# be aimed at someone: "laughing at Jake Morrison").
_PLACE_BEFORE = re.compile(r"\b(?:in|near|over|across|around|through|inside|outside|above|beneath|under"
                           r"|along|toward|towards|into)\s+(?:the\s+)?$", re.IGNORECASE)
# A quoted title or brand: "a bakery logo, 'Night Owl'", "\"The Last Lantern Keeper\"".
_QUOTED_BEFORE = re.compile(r"[\"“‘'«]\s*(?:(?:The|A|An)\s+)?$")


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """Given names, lower case: ``first_names.txt`` (the US Census Bureau's 1990 list and
    Faker's given names of all locales that are no English word; about 21,000)."""
    text = resources.files("elens_bias").joinpath("first_names.txt").read_text()
    return frozenset(w for w in (line.strip() for line in text.splitlines()) if w and not w.startswith("#"))


@lru_cache(maxsize=1)
def _not_given() -> frozenset[str]:
    """Capitalised words that begin no name even when they are given names too: places
    and styles, the words that fix an attribute ("Young Woman", "Black History") and
    person nouns ("A Man Walking His Dog")."""
    return frozenset(NOT_NAMES | {w for table in (AGE_WORDS, RACE_WORDS, GENDER_WORDS) for w in table if " " not in w}
                     | set(lexicon()))


def _is_word(word: str) -> bool:
    """An English word or a regular inflection of one ("slippers")."""
    try:
        from elens_lexicon.spelling import is_known
    except ImportError:
        return word in _words()
    return is_known(word, _words())


@lru_cache(maxsize=1)
def _words() -> frozenset[str]:
    """English words (GCIDE, through elens-lexicon when it is installed), for given
    names that are words too ("Olive Garden", "Chase Bank")."""
    try:
        from elens_lexicon.spelling import english_words

        return english_words(("gcide",))
    except (ImportError, OSError):
        return frozenset()


def _credited(prompt: str, start: int, end: int) -> bool:
    """The name at ``start:end`` is credited for a style, alone or in a list of names."""
    before = prompt[max(0, start - 200):start]  # room for a list of a few credited names
    listed = _CREDIT_LIST.search(before)  # the names before it in the same list
    if _CREDITED_BEFORE.search(before[:listed.start()] if listed else before) or _CREDITED_AFTER.match(prompt, end):
        return True
    work = _WORK_AFTER.match(prompt, end)
    if not work:
        return False
    # "a Hype Williams video"; a tag of its own: ", Edgar Degas pastel," ("a photo of
    # Jake Morrison painting" is him)
    tag = before.rstrip()[-1:] in (",", ";", "|") and (work.group(0).rstrip()[-1:] in ",;|" or work.end() == len(prompt))
    return bool(_ARTICLE_BEFORE.search(before) or tag)


def _is_name_word(word: str) -> bool:
    """Capitalised as a name is: "Jane", "McDonald", "DiCaprio", "Björk"; not "USA" or "iPhone"."""
    return len(word) > 1 and word[0].isupper() and any(c.islower() for c in word[1:]) \
        and word.lower() not in NOT_NAMES and word.lower() not in RUN_BREAKERS


# What separates the tags of a prompt (not a full stop: "Dr. Ford" is one tag)
_CLAUSE_EDGE = re.compile(r"[,;|\n]")


def _credited_clause(prompt: str, run_start: int, end: int) -> bool:
    """A name that is the last of three or more clauses ("a lighthouse, crashing waves,
    Ivan Aivazovsky"): in a list of tags, the artist ("best quality, Emma Watson, elven
    princess" is her; "a photo at a party, Jake Morrison" too). Not after a person
    ("my boss, Dana Whitfield": the boss)."""
    edges = [m.start() for m in _CLAUSE_EDGE.finditer(prompt, 0, run_start)]
    if len(edges) < 2 or prompt[edges[-1] + 1:run_start].strip() or prompt[end:].strip(" .!\n"):
        return False
    previous = list(_TOKEN.finditer(prompt, edges[-2] + 1 if len(edges) > 1 else 0, edges[-1]))
    return not (previous and previous[-1].group(0).lower() in lexicon())


@lru_cache(maxsize=256)
def names_as_written(prompt: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """People's names as written: runs of capitalised words that begin with a title
    ("Mrs Lopez", "Dr. Ford") or a given name and another capitalised word ("Greta
    Thunberg", "Jake Morrison's" without the "'s"), but not a place, a date, a quoted
    title or a style's credit (see the patterns above). A run that begins with other
    words ("Cyberpunk Jane Doe", Title Case prompts) is read from its first given name.

    Returns the names, and the runs that look like names but are no one in the
    picture (an artist's "Kate Baker": her "Baker" is no baker to diversify either)."""
    runs: list[list[tuple[int, int, str]]] = []  # per run: (start, end, word without "'s")
    run: list[tuple[int, int, str]] = []
    for tok in _NAME_TOKEN.finditer(prompt):
        word = _POSSESSIVE.sub("", tok.group(0))
        capitalised = _is_name_word(word)
        gap = prompt[run[-1][1]:tok.start()] if run else ""
        titled = bool(run) and run[-1][2].lower() in TITLES and gap in (". ", ".")
        if capitalised and run and (gap == " " or titled):
            run.append((tok.start(), tok.start() + len(word), word))
        else:
            if run:
                runs.append(run)
            run = [(tok.start(), tok.start() + len(word), word)] if capitalised else []
        if run and len(word) < len(tok.group(0)):  # "Morrison's": the name ends here
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    found, not_people = [], []
    not_given, given = _not_given(), given_names()
    for run in runs:
        words = [w.lower() for _, _, w in run]
        first = next((i for i, w in enumerate(words) if w in TITLES or w in given and w not in not_given
                      or w in GIVEN_NAME_TITLES and i + 1 < len(words) and words[i + 1] in given), None)
        if first is None:
            continue
        run_start = run[0][0]  # the context of a name is the run's ("style of Caspar David Friedrich")
        run, words = run[first:], words[first:]
        start, end = run[0][0], run[-1][1]
        if len(words) < 2:
            continue
        if words[0] in lexicon() and words[1] not in given and _is_word(words[1]):
            continue  # a role in Title Case: "A Professor Giving A Lecture" ("Coach Reyes" is a name)
        if words[0] not in TITLES and (
                words[-1] in NOT_NAME_ENDS or words[-1] in CREDIT_ENDS  # "Sydney Opera House", "Akira Kurosawa Style"
                # "Olive Garden", "Ruby Slippers" (and "Will Smith", whom a policy lists)
                or words[0] not in GIVEN_NAME_TITLES and words[0] in _words() and all(_is_word(w) for w in words[1:])):
            not_people.append((start, end))
            continue
        # the few whole words just before the run (a place's preposition, a quote mark)
        before = prompt[prompt.rfind(" ", 0, max(0, run_start - 40)) + 1:run_start]
        if (words[0] not in TITLES and (_PLACE_BEFORE.search(before) or _QUOTED_BEFORE.search(before))) \
                or _credited(prompt, run_start, end) or _credited_clause(prompt, run_start, end):
            not_people.append((start, end))
            continue
        found.append((start, end))
    return found, not_people


def named_people(prompt: str, public_figures: Iterable[str],
           extra: Iterable[tuple[int, int, str, float]] = ()) -> list[tuple[int, int, str, float]]:
    """Named people: the policy's list (score 1.0), NER persons (``extra``) not credited
    for a style, then names found by :func:`names_as_written` (0.6)."""
    found: list[tuple[int, int, str, float]] = []
    names = tuple(public_figures)
    regex = _figures_regex(names)
    canonical = {n.lower(): n for n in names}
    for m in regex.finditer(prompt) if regex else ():
        found.append((m.start(), m.end(), canonical.get(re.sub(r"\s+", " ", m.group(0).lower()), m.group(0)), 1.0))
    extra = [n for n in extra if not _credited(prompt, n[0], n[1])]
    for start, end, name, score in [*_disguised(prompt, names), *_misspelt(prompt, names), *extra]:
        if not any(s < end and start < e for s, e, _, _ in found):
            found.append((start, end, name, score))
    for start, end in names_as_written(prompt)[0]:
        if not any(s < end and start < e for s, e, _, _ in found):
            found.append((start, end, prompt[start:end], 0.6))
    return sorted(found)
