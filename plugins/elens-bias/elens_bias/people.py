"""Find the people in a prompt and which of their attributes the prompt leaves open.

A *cluster* is one person reference ("a nurse", "five teachers", "Taylor Swift").
Its type follows Ethical-Lens: 0 = nothing to diversify (a named person, or every
attribute fixed), 1 = one person with open attributes, 2 = a group with open
attributes. Pure Python and data files; no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

NUMBERS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "dozen": 12, "several": 3, "many": 5, "few": 3, "couple": 2, "pair": 2,
}
GROUP_WORDS = {"team", "group", "crowd", "family", "class", "band", "crew", "squad", "couple", "pair", "gang",
               "staff", "panel", "committee", "bunch", "line", "row", "circle", "choir", "troop", "club", "council"}
DETERMINERS = {"a", "an", "one", "the", "this", "that", "my", "your", "his", "her", "our", "their", "some", "every",
               "each", "any"}
PRONOUNS = {"he": "male", "him": "male", "his": "male", "himself": "male",
            "she": "female", "her": "female", "hers": "female", "herself": "female"}
GENDER_WORDS = {"male": "male", "female": "female", "masculine": "male", "feminine": "female"}
AGE_WORDS = {
    "baby": "infancy", "infant": "infancy", "newborn": "infancy", "toddler": "infancy",
    "child": "childhood", "little": "childhood", "kid": "childhood",
    "teenage": "adolescence", "teen": "adolescence", "teenaged": "adolescence", "adolescent": "adolescence",
    "young": "young adulthood", "youthful": "young adulthood",
    "middle-aged": "middle age", "middle aged": "middle age", "mature": "middle age",
    "old": "old age", "elderly": "old age", "aged": "old age", "senior": "old age", "older": "old age",
    "retired": "old age", "aging": "old age", "ageing": "old age", "grey-haired": "old age", "gray-haired": "old age",
}
RACE_WORDS = {
    "white": "White", "caucasian": "White", "european": "White",
    "black": "Black", "african": "Black", "african-american": "Black", "african american": "Black",
    "latino": "Latino-Hispanic", "latina": "Latino-Hispanic", "latinx": "Latino-Hispanic",
    "hispanic": "Latino-Hispanic", "mexican": "Latino-Hispanic", "brazilian": "Latino-Hispanic",
    "colombian": "Latino-Hispanic", "puerto rican": "Latino-Hispanic",
    "asian": "Asian", "chinese": "Asian", "japanese": "Asian", "korean": "Asian", "vietnamese": "Asian",
    "thai": "Asian", "filipino": "Asian", "indian": "Asian", "east asian": "Asian", "south asian": "Asian",
    "middle eastern": "Middle Eastern", "arab": "Middle Eastern", "arabic": "Middle Eastern",
    "persian": "Middle Eastern", "iranian": "Middle Eastern", "turkish": "Middle Eastern",
    "egyptian": "Middle Eastern", "lebanese": "Middle Eastern", "syrian": "Middle Eastern",
    # Nationalities and peoples that fix the attribute without naming one of the values.
    "american": None, "british": None, "french": None, "german": None, "italian": None, "spanish": None,
    "russian": None, "nigerian": "Black", "kenyan": "Black", "ethiopian": "Black", "ghanaian": "Black",
    "native american": None, "indigenous": None, "aboriginal": None, "pacific islander": None, "jewish": None,
    "irish": None, "scottish": None, "polish": None, "greek": None, "swedish": None, "norwegian": None,
    "pakistani": "Asian", "bangladeshi": "Asian", "indonesian": "Asian", "malaysian": "Asian",
    "peruvian": "Latino-Hispanic", "argentinian": "Latino-Hispanic", "cuban": "Latino-Hispanic",
    "moroccan": "Middle Eastern", "saudi": "Middle Eastern", "israeli": "Middle Eastern",
}
# Capitalised words that begin places, brands and titles, not people's names.
NOT_NAMES = {
    "new", "york", "san", "los", "las", "angeles", "francisco", "city", "united", "states", "kingdom", "street",
    "avenue", "park", "river", "lake", "mount", "mountain", "north", "south", "east", "west", "central", "grand",
    "canyon", "golden", "gate", "bridge", "times", "square", "eiffel", "tower", "great", "wall", "hong", "kong",
    "las", "vegas", "rio", "de", "janeiro", "saint", "st", "santa", "monica", "national", "museum", "university",
    "college", "school", "hospital", "church", "cathedral", "palace", "castle", "christmas", "easter", "halloween",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december", "star", "wars",
    "harry", "potter", "disney", "pixar", "marvel", "dc", "studio", "ghibli", "unreal", "engine", "octane",
    "render", "artstation", "trending", "on", "hd", "uhd", "the", "a", "an", "of", "in", "and", "art", "nouveau",
    "deco", "renaissance", "baroque", "van", "gogh", "da", "vinci", "greg", "rutkowski", "alphonse", "mucha",
    "middle", "eastern", "african", "american", "asian", "european", "latino", "black", "white", "photo",
}


@dataclass(frozen=True)
class Noun:
    singular: str
    plural: str
    gender: str | None = None
    role: str = ""  # the neutral role, for constraints
    age: str | None = None
    kind: str = "occupation"  # occupation | family | social: the roles.txt section


@dataclass
class Cluster:
    id: str
    text: str
    start: int
    end: int  # end of the noun
    noun: Noun
    count: int  # 1, or the group size (0 when unknown but plural)
    fixed: dict[str, str | None] = field(default_factory=dict)
    open: list[str] = field(default_factory=list)
    named: bool = False
    insert_at: int = 0  # where attribute words go (just before the noun)
    attr_words: list = field(default_factory=list)  # (start, end, attribute, text) already in the prompt
    det_start: int | None = None  # the article to fix, if any
    type: int = 0

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "span": [self.start, self.end], "type": self.type,
                "role": self.noun.role or self.noun.singular, "count": self.count or None,
                "fixed": dict(self.fixed), "open": list(self.open), "named": self.named}


def _plural(word: str) -> str:
    last = word.split(" ")[-1]
    head = word[: len(word) - len(last)]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return head + last + "es"
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        return head + last[:-1] + "ies"
    if last.endswith("man"):
        return head + last[:-3] + "men"
    if last.endswith("fe"):
        return head + last[:-2] + "ves"
    return head + last + "s"


#: Nouns that fix an age stage themselves.
ROLE_AGES = {
    "baby": "infancy", "infant": "infancy", "newborn": "infancy", "toddler": "infancy",
    "child": "childhood", "kid": "childhood", "boy": "childhood", "girl": "childhood",
    "schoolboy": "childhood", "schoolgirl": "childhood",
    "teenager": "adolescence", "teen": "adolescence", "adolescent": "adolescence",
}
FAMILY_ROLES = {"adult", "parent", "child", "sibling", "spouse", "partner", "grandparent", "grandchild", "relative"}


@lru_cache(maxsize=1)
def lexicon() -> dict[str, tuple[Noun, bool]]:
    """Every surface form -> (noun, is_plural)."""
    forms: dict[str, tuple[Noun, bool]] = {}
    base = resources.files("elens_bias")
    kinds: dict[str, str] = {}
    kind = "occupation"
    for line in base.joinpath("roles.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("# family"):
            kind = "family"
        elif line.startswith("# social"):
            kind = "social"
        if not line or line.startswith("#"):
            continue
        singular, _, plural = line.partition("|")
        noun = Noun(singular, plural or _plural(singular), role=singular, age=ROLE_AGES.get(singular), kind=kind)
        kinds.setdefault(singular, kind)
        forms.setdefault(singular, (noun, False))
        forms.setdefault(noun.plural, (noun, True))
    for line in base.joinpath("gendered.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        singular, plural, gender, *rest = line.split("|")
        role = rest[0] if rest else singular
        noun = Noun(singular, plural, gender=gender, role=role, age=ROLE_AGES.get(singular),
                    kind=kinds.get(role, "family" if role in FAMILY_ROLES else "social"))
        forms[singular] = (noun, False)
        forms[plural] = (noun, True)
    return forms


_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+")
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters, any script
_NAME_GAP = re.compile(r"\s+|\s*[-'’]\s*")  # between the words of a name: "Ocasio-Cortez", "O'Neal"


def _words_rx(table: dict) -> re.Pattern:
    body = "|".join(re.escape(w) for w in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


_ATTR_RX = [("age", _words_rx(AGE_WORDS), AGE_WORDS), ("race", _words_rx(RACE_WORDS), RACE_WORDS),
            ("gender", _words_rx(GENDER_WORDS), GENDER_WORDS)]


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    form: str


def _nouns(prompt: str) -> list[_Hit]:
    """Person nouns by longest match over 1- to 3-word windows (a dictionary lookup, no regex)."""
    forms = lexicon()
    tokens = list(_TOKEN.finditer(prompt))
    hits, i = [], 0
    while i < len(tokens):
        for size in (3, 2, 1):
            window = tokens[i:i + size]
            if len(window) < size:
                continue
            gaps = [prompt[a.end():b.start()] for a, b in zip(window, window[1:])]
            if any(g.strip() for g in gaps):
                continue
            form = " ".join(t.group(0).lower() for t in window)
            if form in forms:
                hits.append(_Hit(window[0].start(), window[-1].end(), form))
                i += size
                break
        else:
            i += 1
    return hits


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


def _names(prompt: str, public_figures: Iterable[str],
           extra: Iterable[tuple[int, int, str, float]] = ()) -> list[tuple[int, int, str, float]]:
    """Named people: the policy's list (score 1.0), NER persons (``extra``), then runs of capitalised words (0.6)."""
    found: list[tuple[int, int, str, float]] = []
    names = tuple(public_figures)
    regex = _figures_regex(names)
    canonical = {n.lower(): n for n in names}
    for m in regex.finditer(prompt) if regex else ():
        found.append((m.start(), m.end(), canonical.get(re.sub(r"\s+", " ", m.group(0).lower()), m.group(0)), 1.0))
    for start, end, name, score in [*_disguised(prompt, names), *_misspelt(prompt, names), *extra]:
        if not any(s < end and start < e for s, e, _, _ in found):
            found.append((start, end, name, score))
    tokens = list(_TOKEN.finditer(prompt))
    run: list[re.Match] = []

    def flush() -> None:
        if len(run) >= 2:
            start, end = run[0].start(), run[-1].end()
            if not any(s <= start < e or s < end <= e for s, e, _, _ in found):
                found.append((start, end, prompt[start:end], 0.6))

    for i, tok in enumerate(tokens):
        word = tok.group(0)
        sentence_start = i == 0 or prompt[max(0, tok.start() - 2):tok.start()].strip() in (".", "!", "?")
        capitalised = word[0].isupper() and word[1:].islower() and len(word) > 1 and word.lower() not in NOT_NAMES
        # "John Smith" is a name although "smith" is a role; "Doctor" alone opening a run is not.
        is_name = (capitalised and not sentence_start and (not run or prompt[run[-1].end():tok.start()] == " ")
                   and (bool(run) or word.lower() not in lexicon()))
        if is_name:
            run.append(tok)
        else:
            flush()
            run = [tok] if (word[0].isupper() and word[1:].islower() and word.lower() not in NOT_NAMES
                            and word.lower() not in lexicon() and i > 0) else []
    flush()
    return sorted(found)


def find_clusters(prompt: str, attributes: list[str], public_figures: Iterable[str],
                  extra_names: Iterable[tuple[int, int, str, float]] = ()) -> tuple[list[Cluster], list]:
    """The people clusters of ``prompt`` and the named people found in it.

    ``extra_names`` are (start, end, name, score) spans another finder (NER) found.
    """
    names = _names(prompt, public_figures, extra_names)
    clusters: list[Cluster] = []
    lowered = prompt.lower()
    for m in _nouns(prompt):
        if any(s <= m.start < e for s, e, _, _ in names):
            continue
        noun, plural = lexicon()[m.form]
        fixed: dict[str, str | None] = {}
        if noun.gender:
            fixed["gender"] = noun.gender
        if noun.age:
            fixed["age"] = noun.age
        # Modifiers: the words between the determiner (or clause start) and the noun.
        left = prompt[: m.start]
        words = list(_TOKEN.finditer(left))[-5:]
        det_start = None
        modifiers: list[re.Match] = []
        for w in reversed(words):
            token = w.group(0).lower()
            if token in DETERMINERS or token in ("of", "with", "and", "or", "by", "for", "to", "at", "in", "on"):
                if token in ("a", "an"):
                    det_start = w.start()
                break
            modifiers.insert(0, w)
        attr_words: list[tuple[int, int, str, str]] = []
        if modifiers:
            span_start = modifiers[0].start()
            for attr, rx, table in _ATTR_RX:
                for hit in rx.finditer(prompt, span_start, m.start):
                    if attr == "age" and attr not in {a for _s, _e, a, _t in attr_words}:
                        fixed["age"] = table[hit.group(0).lower()]  # "teenage boy": the word beats the noun
                    else:
                        fixed.setdefault(attr, table[hit.group(0).lower()])
                    attr_words.append((hit.start(), hit.end(), attr, hit.group(0)))
        count = 1
        if plural:
            count = 0
            prev = [w.group(0).lower() for w in words]
            for token in reversed(prev[-3:]):
                if token.isdigit():
                    count = int(token)
                    break
                if token in NUMBERS:
                    count = NUMBERS[token]
                    break
        else:
            before = lowered[max(0, m.start - 30):m.start]
            group = re.search(r"\b(" + "|".join(GROUP_WORDS) + r")\s+of\s+$", before)
            if group:
                plural, count = True, 0
        insert_at = m.start
        clusters.append(Cluster(
            id=f"p{len(clusters)}", text=prompt[(modifiers[0].start() if modifiers else m.start):m.end],
            start=modifiers[0].start() if modifiers else m.start, end=m.end, noun=noun,
            count=count if not plural else (count or 0), fixed=fixed, insert_at=insert_at, det_start=det_start,
            attr_words=sorted(attr_words),
        ))
        clusters[-1].type = 2 if plural else 1
    singles = [c for c in clusters if c.type == 1]
    if len(singles) == 1 and "gender" not in singles[0].fixed:
        for token in _TOKEN.findall(lowered):
            if token in PRONOUNS:
                singles[0].fixed["gender"] = PRONOUNS[token]
                break
    for c in clusters:
        c.open = [a for a in attributes if a not in c.fixed]
        if not c.open:
            c.type = 0
    return clusters, names
