"""Masking identifiers typed into free text: what is caught, in the spellings Brazilians type, and what is
refused (dates, times, amounts, protocols, order numbers)."""

import pytest

from zchat_assets.masking import DDDS, mask, valid_cnpj, valid_cpf

CAUGHT = [
    # CPF with punctuation, whatever its check digits; bare, only when they are valid.
    ("Meu CPF é 529.982.247-25", "Meu CPF é [cpf]"),
    ("cpf: 123.456.789-00.", "cpf: [cpf]."),
    ("CPF 529982247-25", "CPF [cpf]"),
    ("529 982 247 25", "[cpf]"),
    ("529.982.247.25", "[cpf]"),
    ("o cpf é 52998224725", "o cpf é [cpf]"),
    ("CPF:12345678909", "CPF:[cpf]"),
    # CNPJ with punctuation, or 14 bare digits with valid check digits.
    ("CNPJ 11.222.333/0001-81", "CNPJ [cnpj]"),
    ("cnpj 11.222.333/0001-80 (digitei errado?)", "cnpj [cnpj] (digitei errado?)"),
    ("11222333/0001-81", "[cnpj]"),
    ("nota no cnpj 11222333000181", "nota no cnpj [cnpj]"),
    # Phones: country code, DDD in every spelling, mobile and landline.
    ("Meu telefone é +55 11 91234-5678, pode ligar.", "Meu telefone é [phone], pode ligar."),
    ("+55 (11) 91234-5678", "[phone]"),
    ("+55 (21) 3456-7890", "[phone]"),
    ("+5511912345678", "[phone]"),
    ("5511912345678", "[phone]"),
    ("55 11 91234-5678", "[phone]"),
    ("0055 11 91234-5678", "[phone]"),
    ("(11) 91234-5678", "[phone]"),
    ("(11)91234-5678", "[phone]"),
    ("( 11 ) 91234-5678", "[phone]"),
    ("(011) 91234-5678", "[phone]"),
    ("011 91234-5678", "[phone]"),
    ("0xx11 91234-5678", "[phone]"),
    ("(0XX21) 3456-7890", "[phone]"),
    ("11 91234-5678", "[phone]"),
    ("11 9 1234-5678", "[phone]"),
    ("11 9 1234 5678", "[phone]"),
    ("11 91234 5678", "[phone]"),
    ("11-91234-5678", "[phone]"),
    ("11.91234.5678", "[phone]"),
    ("me chama no zap 11912345678", "me chama no zap [phone]"),
    ("011912345678", "[phone]"),
    ("01132345678", "[phone]"),
    ("551132345678", "[phone]"),
    ("21 3456-7890", "[phone]"),
    ("(85) 3216-5400 ramal 12", "[phone] ramal 12"),
    ("liga no 91234-5678", "liga no [phone]"),
    ("liga no 9 1234-5678", "liga no [phone]"),
    ("ou no fixo 3456-7890", "ou no fixo [phone]"),
    ("me liga no 11 91234-5678", "me liga no [phone]"),  # "no" is "in the", not nº
    ("tel.:(61)99876-5432.", "tel.:[phone]."),
    # E-mail addresses.
    ("Pode mandar para ana.silva12@email.example por favor.", "Pode mandar para [email] por favor."),
    ("Ana.Silva+loja@Gmail.COM", "[email]"),
    ("joao_souza@empresa.com.br.", "[email]."),
    ("<maria-jose@uol.com.br>", "<[email]>"),
    ("mailto:conceição@provedor.com.br", "mailto:[email]"),
    # Several in one text, and next to punctuation.
    ("CPF 529.982.247-25, tel (11) 91234-5678 e e-mail ze@x.com",
     "CPF [cpf], tel [phone] e e-mail [email]"),
    ("Dados:\n52998224725\n+55 11 91234-5678", "Dados:\n[cpf]\n[phone]"),
]

REFUSED = [
    # dates and times
    "Entrego dia 18/11/2026 às 14:30.", "2026-11-18", "18.11.2026", "18-11-2026", "2026-11-18T13:45:00Z",
    "das 9h às 18h", "14h30", "10:00:00", "de 11:30-12:45",
    # money
    "R$ 1.234,56", "R$ 123.456.789,00", "1.234.567,89", "R$1234,56", "total 3.456,78 em 10x",
    # protocols, orders, tickets, codes: bare digits that are no valid CPF or CNPJ, or follow a reference word
    "protocolo 20261118000123", "Protocolo: 20412000123", "pedido nº 11912345678", "pedido #11987654321",
    "Pedido 11 91234-5678", "chamado 3456-7890", "nf-e 35261112345678000199550010000012341000012345",
    "PED-2026-000123", "pedido 123456789", "A1B2C3D4E5F6", "12345678900", "11222333000180",
    "20412000123-1", "https://media.example/20412000123/1/foto.jpg",
    # a bare run of ten digits: a landline without separators, or as likely an order number or epoch seconds
    "2134567890", "1733456789", "1763467200000",
    # service numbers are a company's
    "0800 123 4567", "0800-721-0000", "08007210000", "0300 789 6000",
    # postcodes, spans of years, versions, addresses and the like
    "CEP 01310-100", "22041-001", "2019-2020", "de 1998-2004", "v1.2.3", "192.168.0.1", "Rua Augusta, 1500",
    "sala 1203, bloco 4", "@fulano", "user@localhost", "ana@", "e-mail",
    "3f2a1c9e-8b7d-4e6f-a5b4-c3d2e1f0a9b8", "Olá, bom dia!", "",
]


@pytest.mark.parametrize("text, masked", CAUGHT)
def test_identifiers_are_masked(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize("text", REFUSED)
def test_what_only_looks_like_an_identifier_is_kept(text):
    assert mask(text) == text


@pytest.mark.parametrize("text, masked", CAUGHT)
def test_masking_twice_changes_nothing_more(text, masked):
    assert mask(masked) == masked


def test_none_stays_none():
    assert mask(None) is None


@pytest.mark.parametrize("digits, valid", [
    ("52998224725", True), ("12345678909", True), ("11144477735", True),
    ("52998224726", False), ("11111111111", False), ("1234567890", False), ("5299822472a", False),
])
def test_cpf_check_digits(digits, valid):
    assert valid_cpf(digits) is valid


@pytest.mark.parametrize("digits, valid", [
    ("11222333000181", True), ("11444777000161", True),
    ("11222333000180", False), ("00000000000000", False), ("1122233300018", False),
])
def test_cnpj_check_digits(digits, valid):
    assert valid_cnpj(digits) is valid


@pytest.mark.parametrize("ddd, caught", [("11", True), ("99", True), ("20", False), ("10", False), ("56", False)])
def test_a_phone_needs_a_ddd_anatel_assigns(ddd, caught):
    assert (ddd in DDDS) is caught
    assert (mask(f"{ddd} 91234-5678") == "[phone]") is caught
