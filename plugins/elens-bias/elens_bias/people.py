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
    "inuit": None, "maori": None, "sami": None, "navajo": None, "cherokee": None, "hawaiian": None, "samoan": None,
    "tongan": None, "fijian": None, "polynesian": None, "tibetan": "Asian", "mongolian": "Asian", "nepali": "Asian",
    "nepalese": "Asian", "sri lankan": "Asian", "burmese": "Asian", "cambodian": "Asian", "taiwanese": "Asian",
}
# Capitalised words that begin places, brands and titles, not people's names.
NOT_NAMES = {
    "new", "york", "san", "los", "las", "angeles", "francisco", "city", "united", "states", "kingdom", "street",
    "avenue", "river", "lake", "mount", "mountain", "north", "south", "east", "west", "central", "grand",
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


# After "a doctor's", the parts of a person that show one in the picture.
_BODY_AFTER = re.compile(r"\s+(?:\w+\s+)?(?:hands?|fingers?|face|eyes?|back|arms?|legs?|feet|foot|hair|head|"
                         r"shoulders?|lips|mouth|smile|silhouette|reflection|profile|portrait|body)\b", re.IGNORECASE)


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
            # "a doctor's hands": the doctor, without the "'s" (the token regex keeps "'")
            owner = form.removesuffix("'s").removesuffix("'") if form.endswith(("'s", "s'")) else form
            if owner != form and not _BODY_AFTER.match(prompt, window[-1].end()):
                owner = form  # "a teacher's desk in an empty classroom": no teacher
            if form in forms or owner in forms:
                hits.append(_Hit(window[0].start(), window[-1].end() - len(form) + len(owner),
                                 form if form in forms else owner))
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


#: Words before a name that make it one: "Mrs Lopez", "Dr. Elaine Ford", "Coach Reyes".
TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "aunt", "auntie", "uncle",
          "coach", "officer", "detective", "sergeant", "sgt", "rev", "reverend", "president", "senator",
          "governor", "mayor", "judge", "pastor"}
#: Titles that also begin other names ("Queen Anne style", "Lady Liberty"): a given name must follow.
GIVEN_NAME_TITLES = {"king", "queen", "prince", "princess", "lady", "lord"}
#: The last word of a place's, a building's, an event's or a firm's name, seldom a surname's.
NOT_NAME_ENDS = {
    "center", "centre", "street", "avenue", "road", "boulevard", "square", "plaza", "bridge", "tower", "house",
    "palace", "castle", "cathedral", "church", "temple", "mosque", "shrine", "museum", "gallery", "library",
    "station", "airport", "stadium", "arena", "theater", "theatre", "hotel", "cafe", "restaurant", "market",
    "mall", "island", "islands", "bay", "beach", "coast", "valley", "canyon", "desert", "forest", "mountains",
    "falls", "river", "sea", "ocean", "memorial", "monument", "week", "month", "festival", "awards", "cup",
    "league", "company", "records", "studios", "university", "college", "institute", "foundation",
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
# A place or a time, not a person: "in Nova Scotia", "at Rockefeller Center", "on Memorial Day".
_PLACE_BEFORE = re.compile(r"\b(?:in|at|on|near|over|across|around|through|inside|outside|above|beneath|under"
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
    and styles, and the words that fix an attribute ("Young Woman", "Black History")."""
    return frozenset(NOT_NAMES | {w for table in (AGE_WORDS, RACE_WORDS, GENDER_WORDS) for w in table if " " not in w})


def _credited(prompt: str, start: int, end: int) -> bool:
    """The name at ``start:end`` is credited for a style, alone or in a list of names."""
    before = prompt[max(0, start - 200):start]
    listed = _CREDIT_LIST.search(before)  # the names before it in the same list
    if _CREDITED_BEFORE.search(before[:listed.start()] if listed else before) or _CREDITED_AFTER.match(prompt, end):
        return True
    work = _WORK_AFTER.match(prompt, end)
    return bool(work and (_ARTICLE_BEFORE.search(before) or work.group(0).rstrip()[-1:] in ",;|"
                          or work.end() == len(prompt)))


def _is_name_word(word: str) -> bool:
    """Capitalised as a name is: "Jane", "McDonald", "DiCaprio", "Björk"; not "USA" or "iPhone"."""
    return len(word) > 1 and word[0].isupper() and any(c.islower() for c in word[1:]) \
        and word.lower() not in NOT_NAMES and word.lower() not in RUN_BREAKERS


_CLAUSE_EDGE = re.compile(r"[,;|\n]")


def _credited_clause(prompt: str, run_start: int, end: int) -> bool:
    """A name that is the last of several clauses ("a lighthouse in a storm, Ivan
    Aivazovsky"): in a list of tags, the artist ("best quality, Emma Watson, elven
    princess" is her). Not after a person ("my boss, Dana Whitfield": the boss)."""
    edges = [m.start() for m in _CLAUSE_EDGE.finditer(prompt, 0, run_start)]
    if not edges or prompt[edges[-1] + 1:run_start].strip() or prompt[end:].strip(" .!\n"):
        return False
    previous = list(_TOKEN.finditer(prompt, edges[-2] + 1 if len(edges) > 1 else 0, edges[-1]))
    return not (previous and previous[-1].group(0).lower() in lexicon())


def _capitalised_names(prompt: str) -> list[tuple[int, int]]:
    """People's names as written: runs of capitalised words that begin with a title
    ("Mrs Lopez", "Dr. Ford") or a given name and another capitalised word ("Greta
    Thunberg", "Jake Morrison's" without the "'s"), but not a place, a date, a quoted
    title or a style's credit (see the patterns above). A run that begins with other
    words ("Cyberpunk Jane Doe", Title Case prompts) is read from its first given name."""
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
    found = []
    not_given, given = _not_given(), given_names()
    for run in runs:
        words = [w.lower() for _, _, w in run]
        first = next((i for i, w in enumerate(words) if w in TITLES or w in given and w not in not_given
                      or w in GIVEN_NAME_TITLES and i + 1 < len(words) and words[i + 1] in given), None)
        if first is None:
            continue
        run_start = run[0][0]  # the context of a name is the run's ("style of Caspar David Friedrich")
        run, words = run[first:], words[first:]
        if words[0] in TITLES:
            if len(words) < 2:
                continue
        elif len(words) < 2 or words[-1] in NOT_NAME_ENDS:
            continue
        if words[-1] in CREDIT_ENDS:  # "Akira Kurosawa Style" in Title Case
            continue
        start, end = run[0][0], run[-1][1]
        before = prompt[prompt.rfind(" ", 0, max(0, run_start - 40)) + 1:run_start]  # whole words just before
        if (words[0] not in TITLES and (_PLACE_BEFORE.search(before) or _QUOTED_BEFORE.search(before))) \
                or _credited(prompt, run_start, end) or _credited_clause(prompt, run_start, end):
            continue
        found.append((start, end))
    return found


def _names(prompt: str, public_figures: Iterable[str],
           extra: Iterable[tuple[int, int, str, float]] = ()) -> list[tuple[int, int, str, float]]:
    """Named people: the policy's list (score 1.0), NER persons (``extra``) not credited
    for a style, then names found by :func:`_capitalised_names` (0.6)."""
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
    for start, end in _capitalised_names(prompt):
        if not any(s < end and start < e for s, e, _, _ in found):
            found.append((start, end, prompt[start:end], 0.6))
    return sorted(found)


# A clause ends at punctuation: the words before it modify no noun after it.
_CLAUSE_BREAK = re.compile(r"[,;:.!?()\[\]{}|\n]")
#: Characters, titles and things whose name holds a person noun, no one to diversify
#: ("wonder woman", "blade runner style", "a german shepherd"): a character is as
#: fixed as a named person.
NOT_PEOPLE = (
    "german shepherd", "australian shepherd", "grandfather clock", "secretary bird", "pilot whale", "pilot fish",
    "gingerbread man", "gingerbread men", "burger king", "roadside diner", "snow angel", "sand dollar",
    "wonder woman", "iron man", "ant man", "ant-man", "spider man", "spider woman", "bat man", "he man", "he-man",
    "pac man", "pac-man", "rain man", "mad men", "blade runner", "black widow", "snow white", "sleeping beauty",
    "the little mermaid", "the invisible man", "the elephant man", "the old man and the sea", "the tin man",
    "the thinker", "the girl with a pearl earring", "girl with a pearl earring", "the grim reaper", "grim reaper",
    "father christmas", "mother nature", "uncle sam", "lady liberty", "the tooth fairy", "the godfather",
    "doctor who", "doctor strange", "the wicked witch", "the mad hatter", "captain america", "captain marvel",
    "the mandalorian", "the witcher", "the terminator", "the joker", "the little prince", "prince of persia",
    "the last samurai", "the night king", "the dark knight", "the pied piper", "peter pan", "the scream",
)
_NOT_PEOPLE = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(c) for c in sorted(NOT_PEOPLE, key=len, reverse=True))
                         + r")(?![\w-])", re.IGNORECASE)


_QUOTED = re.compile(r'"[^"\n]*"|“[^”\n]*”|\b(?:says|saying|reads|reading|words?|text|titled|caption(?:ed)?)'
                     r"\s*:?\s*['‘][^'’\n]*(?:['’](?!\w)|$)", re.IGNORECASE)
_NONE_BEFORE = re.compile(r"\b(?:no|without)\s+$", re.IGNORECASE)
#: Nouns that make the person noun before them a modifier: "guide dog", "astronaut
#: suit", "passenger seat", "pedestrian bridge", "nurse shark", "student loan".
COMPOUND_HEADS = (
    "dog", "seat", "suit", "bridge", "hat", "helmet", "uniform", "costume", "outfit", "boots", "shoes",
    "jacket", "vest", "badge", "shark", "ant", "bee", "fish", "car", "truck", "van", "boat", "ship", "plane", "house",
    "office", "desk", "room", "station", "school", "academy", "license", "licence", "loan", "card", "statue",
    "figurine", "doll", "toy", "mask", "gear", "kit", "bag", "backpack", "logo", "icon", "emoji", "sticker",
    "party", "day", "appreciation", "lounge", "cabin", "quarters", "camp", "village", "entrance", "exam", "lane",
    "restroom", "bathroom", "toilet", "locker", "ID", "id", "glove", "gloves", "boot", "cap", "armor", "armour",
    "sword", "flag", "jersey", "knife", "pie", "wharf", "chair",
    # animals ("a baby dragon", "a mother bear") and anatomy ("the human heart")
    "dragon", "bear", "cub", "bird", "cat", "kitten", "puppy", "horse", "pony", "elephant", "lion", "tiger", "wolf",
    "deer", "monkey", "whale", "dolphin", "penguin", "owl", "duck", "goat", "sheep", "pig", "cow", "chick", "robot",
    "heart", "brain", "skull", "skeleton", "anatomy", "cell", "tooth", "teeth", "bone", "organ", "body", "skin",
    "fight", "battle",
)
_COMPOUND_AFTER = re.compile(r"(?:\s+|-)(?:" + "|".join(COMPOUND_HEADS) + r")s?\b|-(?:themed|shaped|style)\b",
                             re.IGNORECASE)


#: Words that make the role after them no human: "a giant skeleton king", "a cat chef".
NOT_HUMAN = (
    "skeleton", "zombie", "robot", "android", "cyborg", "alien", "vampire", "ghost", "elf", "orc", "goblin",
    "undead", "demon", "lizard", "frog", "cat", "dog", "fox", "wolf", "bear", "rabbit", "bunny", "mouse", "rat",
    "monkey", "ape", "penguin", "owl", "dragon", "snowman", "mannequin", "lego", "teddy", "raccoon", "hamster",
    "squirrel", "otter", "hedgehog", "badger", "duck", "pig", "cow", "sheep", "goat", "horse", "lion", "tiger",
    "panda", "koala", "sloth", "turtle", "octopus", "shark", "bird", "chicken", "puppy", "kitten", "gingerbread",
    "plush", "toy", "puppet", "doll", "mushroom", "bee", "ant", "insect", "bug", "slime", "pumpkin",
)
#: Roles that work with animals, human however they begin: "a dog walker", "a lion tamer".
ANIMAL_JOBS = {"walker", "trainer", "groomer", "sitter", "breeder", "owner", "catcher", "handler", "keeper", "rider",
               "tamer", "hunter", "herder", "shepherd", "farmer", "charmer", "whisperer", "lover", "vet"}
_NOT_HUMAN_BEFORE = re.compile(r"\b(?:" + "|".join(NOT_HUMAN) + r")s? $", re.IGNORECASE)


#: Common describing words that no suffix marks ("a blind man", "an old woman").
ADJECTIVES = {
    "old", "young", "tall", "short", "big", "small", "little", "tiny", "huge", "blind", "deaf", "happy", "sad",
    "angry", "pretty", "cute", "brave", "strong", "wise", "kind", "proud", "busy", "fat", "thin", "slim", "skinny",
    "bald", "rich", "poor", "sick", "ill", "good", "bad", "great", "nice", "fine", "lone", "lonely", "shy", "calm",
    "quiet", "loud", "smart", "cool", "warm", "cold", "wet", "dry", "new", "real", "main", "fit", "pregnant",
    "handsome", "elegant", "modern", "vintage", "ancient", "medieval", "futuristic", "retro", "stern", "wild",
    "bored", "tired", "weary", "fierce", "gentle", "grumpy", "jolly", "mysterious", "famous", "legendary",
    "heroic", "noble", "royal", "female", "male", "single", "lead", "head", "chief", "senior", "junior",
    "happy", "pretty", "angry", "busy", "grumpy", "jolly", "sleepy", "scary", "creepy", "funny", "silly", "hairy",
    "curly", "sweaty", "dirty", "muddy", "chubby", "messy", "cheeky", "nerdy", "geeky", "scruffy", "lucky",
    "healthy", "wealthy", "heavy", "lazy", "crazy", "ugly", "elegant", "brilliant", "confident", "athletic",
    "energetic", "enthusiastic", "gothic", "exotic", "iconic", "romantic", "realistic", "eccentric", "stoic",
    "majestic", "artistic", "academic", "authentic",
}
# Adjective endings; not "-y" ("chemistry", "army") nor "-ic" ("music"), and not "-al":
# a kind ("a medical doctor") goes after age and race, as a noun's kind does.
_ADJECTIVE_END = re.compile(r"(?:ful|ous|ive|able|ible|less|ish|ed|ing|est|ly)$")


def _describes(word: str) -> bool:
    """A word that describes (an adjective, most likely), not one that names a kind."""
    w = word.lower()
    return w in ADJECTIVES or len(w) > 3 and bool(_ADJECTIVE_END.search(w)) or "-" in w


def find_clusters(prompt: str, attributes: list[str], public_figures: Iterable[str],
                  extra_names: Iterable[tuple[int, int, str, float]] = ()) -> tuple[list[Cluster], list]:
    """The people clusters of ``prompt`` and the named people found in it.

    ``extra_names`` are (start, end, name, score) spans another finder (NER) found.
    """
    names = _names(prompt, public_figures, extra_names)
    clusters: list[Cluster] = []
    lowered = prompt.lower()
    # no people: characters and things named after people, words in quotes (text to
    # draw: a sign saying "Joe's Diner", a shirt that says 'Best Mom Ever')
    elsewhere = [c.span() for c in _NOT_PEOPLE.finditer(prompt)] + [q.span() for q in _QUOTED.finditer(prompt)]
    hits = _nouns(prompt)
    for k, m in enumerate(hits):
        if any(s <= m.start < e for s, e, _, _ in names) or any(s <= m.start < e for s, e in elsewhere):
            continue
        if _COMPOUND_AFTER.match(prompt, m.end):  # "a guide dog", "an astronaut suit": no person
            continue
        if any(0 <= s - m.end <= 1 for s, _e, _n, _sc in names):  # "my classmate Aiden Park": a named person
            continue
        if k + 1 < len(hits) and prompt[m.end:hits[k + 1].start] == " ":
            continue  # "a woman scientist": one person, the scientist (the woman fixes her gender)
        first = k  # the first of the person nouns in a row that ends here ("Raccoon Pirate Captain")
        while first and prompt[hits[first - 1].end:hits[first].start] == " ":
            first -= 1
        if _NOT_HUMAN_BEFORE.search(prompt, 0, hits[first].start) and m.form not in ANIMAL_JOBS:  # "a cat chef"
            continue
        if _NONE_BEFORE.search(prompt, 0, m.start):  # "no humans", "without people": a tag for nobody
            continue
        noun, plural = lexicon()[m.form]
        fixed: dict[str, str | None] = {}
        if noun.gender:
            fixed["gender"] = noun.gender
        if noun.age:
            fixed["age"] = noun.age
        if k and prompt[hits[k - 1].end:m.start] == " ":
            before_noun = lexicon()[hits[k - 1].form][0]
            for attr, value in (("gender", before_noun.gender), ("age", before_noun.age)):
                if value:
                    fixed.setdefault(attr, value)
        # Modifiers: the words between the determiner (or clause start) and the noun.
        left = prompt[: m.start]
        words = list(_TOKEN.finditer(left))[-5:]
        det_start = None
        modifiers: list[re.Match] = []
        following = m.start
        for w in reversed(words):
            token = w.group(0).lower()
            if _CLAUSE_BREAK.search(prompt, w.end(), following):  # "at night, blade runner": not "night"
                break
            following = w.start()
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
        # The values go after the describing words and before the nouns that say what
        # kind of role it is: "a friendly middle-aged Asian sushi chef", not "a friendly
        # sushi middle-aged Asian chef".
        insert_at = m.start
        for w in reversed(modifiers):
            if _describes(w.group(0)) or any(s <= w.start() < e for s, e, _a, _t in attr_words):
                break
            insert_at = w.start()
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
