"""Identifiers customers type into free text (CPF, CNPJ, Brazilian phone numbers, e-mail addresses),
replaced by a fixed marker: `[cpf]`, `[cnpj]`, `[phone]`, `[email]`.

Two precompiled patterns (addresses, then numbers) scan a text; what they find is classified by shape,
and bare digits by check digits, so that order numbers, protocols, dates, times and amounts stay:
- a CPF or CNPJ written with its punctuation (529.982.247-25, 11.222.333/0001-81) is masked whatever
  its check digits (a mistyped CPF is still one); as bare digits (52998224725) only when they are valid;
- a phone needs a valid DDD and a separator somewhere, or the country code, or eleven bare digits in a
  mobile's shape (DDD, 9, eight digits); without a DDD only 9xxxx-xxxx and xxxx-xxxx with a separator;
  a phone-shaped number right after a word that names a reference (pedido, protocolo, nº, #, …) is kept;
- service numbers (0800, 0300, 0500, 0900) are a company's, not a person's, and are kept;
- an e-mail address is an address with a dotted domain.
Names, addresses, identifiers spelled out in words or split across messages, and other countries'
formats are not caught (docs/personal-data.md).
"""

from __future__ import annotations

import hashlib
import re

MARKERS = {"cpf": "[cpf]", "cnpj": "[cnpj]", "phone": "[phone]", "email": "[email]"}

# Brazil's area codes (DDD), as Anatel assigns them: two digits, not every pair.
DDDS = ("11 12 13 14 15 16 17 18 19 21 22 24 27 28 31 32 33 34 35 37 38 41 42 43 44 45 46 47 48 49 51 53 54 55 "
        "61 62 63 64 65 66 67 68 69 71 73 74 75 77 79 81 82 83 84 85 86 87 88 89 91 92 93 94 95 96 97 98 99").split()
_DDD = "(?:" + "|".join(DDDS) + ")"
_SEP = r"[ \u00a0.\-]"  # what people put between digit groups: space, no-break space, dot, hyphen

# An address: a local part that starts a token, @, a domain with at least one dot.
_EMAIL = re.compile(r"(?<![\w.%+\-])[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+")
# Numbers, tried only where a digit, a plus sign or a parenthesis starts, in this order at each place.
_NUMBER = re.compile(r"(?=[\d+(])(?:" + "|".join([
    # Service numbers, kept: matched first so that no part of them is taken for a phone.
    r"(?P<service>(?<![\w+])0[3589]00[ .\-]?\d{3}[ .\-]?\d{4}(?!\w))",
    r"(?P<cnpj>(?<![\w.])\d{2}\.?\d{3}\.?\d{3}/\d{4}-?\d{2}(?!\w))",
    r"(?P<cpf>(?<![\w.])\d{3}(?P<cpf_sep>[. ]?)\d{3}(?P=cpf_sep)\d{3}[-. /]\d{2}(?![\w]|[.,]\d))",
    # Bare digits (a plus sign allowed): classified by length, check digits and shape in `_replace`.
    r"(?P<digits>(?<![\w.,/+\-])\+?\d{10,14}(?![\w]|[.,/\-]\d))",
    # A phone with a DDD: +55 (11) 91234-5678, 0xx11 3456-7890, 11 9 1234 5678, …
    rf"(?P<phone>(?<![\w+])(?:(?:\+ ?|00 ?)55{_SEP}?|55{_SEP})?"
    rf"(?:\( ?0?(?:xx)?{_DDD} ?\) ?|0?(?:xx)?{_DDD}{_SEP}?)"
    rf"(?:9{_SEP}?\d{{4}}|[2-5]\d{{3}}){_SEP}?\d{{4}}(?!\w))",
    # Without a DDD, only with a separator: 91234-5678, 9 1234-5678, 3456-7890.
    r"(?P<local>(?<![\w.,/\-])(?:9[ .\-]?\d{4}[ .\-]\d{4}|9\d{4}[ .\-]\d{4}|[2-5]\d{3}-\d{4})(?![\w]|[.,/\-]\d))",
]) + ")", re.IGNORECASE)
# What every number we mask holds somewhere, looked for first: most texts have none.
_HINT = re.compile(r"\d{3}")
# A word naming a reference (an order, a protocol, a ticket) right before a number: that number is kept.
_REFERENCE = re.compile(r"(?:\b(?:pedidos?|protocolos?|ordem|order|rastreio|rastreamento|nota|nf-?e?|boletos?|"
                        r"c[óo]d(?:igo)?|tickets?|chamados?|faturas?|contratos?|id)|n[º°]|#)"
                        r"[\s:#.º°\-]*(?:no?[.º°]\s*)?$", re.IGNORECASE)
_YEARS = re.compile(r"(?:19|20)\d\d-(?:19|20)\d\d")
# Names the rules, so that text masked under other rules (in the message cache) is not reused.
RULES = hashlib.sha256("|".join([p.pattern for p in (_EMAIL, _NUMBER, _REFERENCE, _YEARS)] + [*MARKERS.values()])
                       .encode()).hexdigest()[:8]


def mask(text: str | None) -> str | None:
    """The text with every CPF, CNPJ, Brazilian phone number and e-mail address replaced by its marker."""
    if not text:
        return text
    if "@" in text:
        text = _EMAIL.sub(MARKERS["email"], text)
    return _NUMBER.sub(_replace, text) if _HINT.search(text) else text


def _replace(match: re.Match) -> str:
    kind = match.lastgroup
    found = match.group(0)
    if kind in ("cnpj", "cpf"):
        return MARKERS[kind]
    if kind == "digits":
        kind = _bare(found.lstrip("+"), found.startswith("+"))
    elif kind == "local" and _YEARS.fullmatch(found):
        kind = None  # 2019-2020, a span of years
    elif kind in ("phone", "local"):
        kind = "phone"
    else:
        kind = None  # a service number
    if kind == "phone" and _REFERENCE.search(match.string, max(0, match.start() - 30), match.start()):
        kind = None
    return MARKERS[kind] if kind else found


def _bare(digits: str, plus: bool) -> str | None:
    """What a run of bare digits is: a CNPJ or CPF with valid check digits, a phone in a mobile's shape or
    with the country code, or nothing we mask (an order number, a protocol, a time in epoch seconds)."""
    if not plus and len(digits) == 14 and valid_cnpj(digits):
        return "cnpj"
    if not plus and len(digits) == 11 and valid_cpf(digits):
        return "cpf"
    if digits.startswith("55") and len(digits) in (12, 13):
        national = digits[2:]
    elif plus:
        return None  # another country's number
    elif digits.startswith("0") and len(digits) in (11, 12):
        national = digits[1:]  # the long-distance 0 before the DDD
    else:
        national = digits
    if national[:2] not in DDDS:
        return None
    mobile = len(national) == 11 and national[2] == "9"
    landline = len(national) == 10 and national[2] in "2345" and (plus or len(digits) > 10)
    return "phone" if mobile or landline else None


def valid_cpf(digits: str) -> bool:
    """Eleven digits whose last two are the CPF's check digits (and not all one digit: 111.111.111-11)."""
    if len(digits) != 11 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    numbers = [int(d) for d in digits]
    for size in (9, 10):
        check = sum(n * w for n, w in zip(numbers, range(size + 1, 1, -1))) * 10 % 11 % 10
        if check != numbers[size]:
            return False
    return True


def valid_cnpj(digits: str) -> bool:
    """Fourteen digits whose last two are the CNPJ's check digits."""
    if len(digits) != 14 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    numbers = [int(d) for d in digits]
    for size in (12, 13):
        weights = [*range(size - 7, 1, -1), *range(9, 1, -1)]
        rest = sum(n * w for n, w in zip(numbers, weights)) % 11
        if (0 if rest < 2 else 11 - rest) != numbers[size]:
            return False
    return True
