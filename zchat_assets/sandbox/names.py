"""The sandbox's cast: agents, departments, tags, customers and message texts, in Brazilian Portuguese."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    email: str
    phone_extension: str


@dataclass(frozen=True)
class Department:
    id: str
    name: str


@dataclass(frozen=True)
class Tag:
    id: str
    name: str


FIRST = ("Ana", "João", "Maria", "José", "Antônio", "Francisco", "Luíza", "Márcia", "Sebastião", "Conceição",
         "Raimundo", "Letícia", "Vitória", "Caio", "Gonçalo", "Iara", "Thaís", "Ênio", "Lúcia", "Otávio",
         "Cecília", "Estêvão", "Jéssica", "Inês", "Flávio", "Débora", "Renê", "Úrsula", "Ícaro", "Fábio")
LAST = ("Silva", "Santos", "Oliveira", "Souza", "Conceição", "Araújo", "Gonçalves", "Magalhães", "Brandão",
        "Falcão", "Simões", "Guimarães", "Assunção", "Damião", "Estêvez", "Lopes", "Ribeiro", "Câmara", "Peçanha")


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace(" ", ".")


AGENTS = tuple(
    Agent(id=str(101 + i), name=f"{FIRST[(i * 7) % len(FIRST)]} {LAST[(i * 5) % len(LAST)]}",
          email=f"{_slug(FIRST[(i * 7) % len(FIRST)])}.{_slug(LAST[(i * 5) % len(LAST)])}@atendimento.example",
          phone_extension=str(2001 + i))
    for i in range(24)
)
DEPARTMENTS = tuple(Department(id=str(11 + i), name=n) for i, n in enumerate(
    ("Atendimento Geral", "Vendas", "Suporte Técnico", "Financeiro", "Pós-venda")))
TAGS = tuple(Tag(id=str(501 + i), name=n) for i, n in enumerate(
    ("Reclamação", "Dúvida", "Orçamento", "Cancelamento", "Elogio", "Troca", "Entrega", "Segunda via")))

CUSTOMER_TEXTS = ("Olá, bom dia!", "Meu pedido ainda não chegou.", "Preciso da segunda via do boleto.",
                  "Quero cancelar minha assinatura.", "Vocês entregam em São João del-Rei?",
                  "Obrigado pela atenção!", "O produto veio com defeito.", "Qual é o prazo de entrega?",
                  "Consegui resolver, valeu!", "Ainda estou aguardando retorno.")
AGENT_TEXTS = ("Olá! Meu nome é {agent}, como posso ajudar?", "Vou verificar, um instante por favor.",
               "Seu pedido está em rota de entrega.", "Enviei a segunda via para o seu e-mail.",
               "Posso ajudar em algo mais?", "Protocolo registrado, obrigado pelo contato.",
               "Sinto muito pelo transtorno, já abri uma solicitação de troca.")
BOT_TEXT = "Olá! Você está falando com o atendimento. Em instantes um atendente vai falar com você."
SYSTEM_TEXTS = ("Atendimento transferido para {department}.", "Atendimento em espera.")
ATTACHMENTS = (("IMAGE", "image/jpeg", "foto.jpg"), ("AUDIO", "audio/ogg", "audio.ogg"),
               ("DOCUMENT", "application/pdf", "comprovante.pdf"))


def customer(rng: random.Random, media: str) -> tuple[str, dict]:
    """A customer id and the `fields` object, whose values are sometimes strings, sometimes lists."""
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    digits = "".join(str(rng.randrange(10)) for _ in range(8))
    phone = f"+55 {rng.choice((11, 21, 31, 41, 51, 61, 71, 81, 85, 92))} 9{digits[:4]}-{digits[4:]}"
    email = f"{_slug(name)}{rng.randrange(100)}@email.example"
    fields = {
        "channel_email": "", "channel_external": "", "channel_facebook": "", "channel_mercado_livre": "",
        "channel_phone": "", "channel_telegram": "", "document": "", "main_identifier": name, "main_photo": "",
    }
    if media == "EMAIL" or rng.random() < 0.3:
        fields["channel_email"] = [email, f"{_slug(name)}@trabalho.example"] if rng.random() < 0.2 else email
    if media in ("PHONE", "PHONE_CONF", "WHATSAPP", "SMS") or rng.random() < 0.2:
        fields["channel_phone"] = [phone, phone[:-4] + "0000"] if rng.random() < 0.1 else phone
    if media == "FACEBOOK":
        fields["channel_facebook"] = str(rng.randrange(10**15, 10**16))
    if media == "TELEGRAM":
        fields["channel_telegram"] = f"@{_slug(name).replace('.', '_')}"
    if media in ("MELI_QST", "MELI_MSG"):
        fields["channel_mercado_livre"] = str(rng.randrange(10**8, 10**9))
    if rng.random() < 0.35:
        d = [rng.randrange(10) for _ in range(11)]
        fields["document"] = f"{''.join(map(str, d[:3]))}.{''.join(map(str, d[3:6]))}.{''.join(map(str, d[6:9]))}-{d[9]}{d[10]}"
    if rng.random() < 0.1:
        fields["channel_external"] = f"CRM-{rng.randrange(10**6):06d}"
    if rng.random() < 0.2:
        fields["main_photo"] = f"https://media.example/avatars/{rng.randrange(10**6)}.jpg"
    return str(rng.randrange(10**6, 10**7)), fields


def regular(rng: random.Random) -> tuple[str, dict]:
    """A returning customer: one who gives a phone, an e-mail address and a CPF, and comes back on other days."""
    customer_id, fields = customer(rng, "WHATSAPP")
    d = [rng.randrange(10) for _ in range(11)]
    fields["channel_email"] = fields["channel_email"] or f"{_slug(fields['main_identifier'])}{rng.randrange(100)}@email.example"
    fields["document"] = fields["document"] or f"{''.join(map(str, d[:3]))}.{''.join(map(str, d[3:6]))}.{''.join(map(str, d[6:9]))}-{d[9]}{d[10]}"
    return customer_id, fields


TYPED_TEXTS = ("Meu telefone é {phone}, pode ligar.", "Meu CPF é {document}.", "Pode mandar para {email} por favor.")


def typed_text(rng: random.Random, fields: dict) -> str | None:
    """A message in which the customer types one of their own identifiers, as customers do; None if they have none."""
    values = {key: _first(fields.get(f"channel_{key}") or fields.get(key)) for key in ("phone", "document", "email")}
    choices = [t for t in TYPED_TEXTS if values[t[t.index("{") + 1:t.index("}")]]]
    return rng.choice(choices).format(**values) if choices else None


def _first(value) -> str:
    return (value[0] if value else "") if isinstance(value, list) else value or ""


def web_client(rng: random.Random) -> dict:
    return {
        "browser": rng.choice(("Chrome 131", "Firefox 133", "Safari 18", "Edge 131", "Samsung Internet 26")),
        "ip": f"{rng.randint(100, 200)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randint(1, 254)}",
        "os": rng.choice(("Windows 11", "Android 15", "iOS 18", "macOS 15", "Linux")),
        "source": rng.choice(("https://loja.example/", "https://loja.example/pedidos", "https://loja.example/ajuda")),
    }


def iso(epoch: float) -> str:
    """The API's timestamp format: UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def message(rng: random.Random, ix, seq: int, author: str, at: int) -> dict:
    """One message as the API shows it; the vendor does not document this shape, so it is our guess."""
    kind, text, attachment = "TEXT", "", None
    if author == "CUSTOMER":
        who = {"type": "CUSTOMER", "id": ix.customer_id, "name": ix.customer_fields["main_identifier"]}
        if rng.random() < 0.08:
            kind, mime, filename = rng.choice(ATTACHMENTS)
            attachment = {"url": f"https://media.example/{ix.protocol}/{seq}/{filename}", "mime_type": mime,
                          "name": filename}
        else:
            text = rng.choice(CUSTOMER_TEXTS)
    elif author == "AGENT":
        agent = ix.agent
        who = {"type": "AGENT", "id": agent.id, "name": agent.name} if agent else {"type": "AGENT", "id": None, "name": None}
        text = rng.choice(AGENT_TEXTS).format(agent=agent.name.split()[0] if agent else "")
    elif author == "BOT":
        who, text = {"type": "BOT", "id": "bot", "name": "Assistente Virtual"}, BOT_TEXT
    else:
        who = {"type": "SYSTEM", "id": None, "name": None}
        text = rng.choice(SYSTEM_TEXTS).format(department=ix.department.name)
    return {"id": f"{ix.protocol}-{seq}", "created_at": iso(at), "author": who, "type": kind, "text": text,
            "attachment": attachment}
