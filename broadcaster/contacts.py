"""Residents' phone numbers, their groups (thôn, bản, tổ dân phố…) and opt-outs.

A contacts CSV::

    phone,name,village,groups
    0912 345 678,Lò Văn A,Bản Na Lay,Bản Na Lay;Hội phụ nữ

Vietnamese headers work too (``số điện thoại``/``sđt``, ``họ tên``/``tên``,
``thôn``/``thôn bản``, ``nhóm``); other columns (``STT``…) are ignored and
named. A file saved by Excel with ``;`` between columns is read as well.

Rules: numbers are normalised to E.164 and must be Vietnamese mobiles; rows
with the same number are merged; an import is all-or-nothing unless bad rows
are skipped on purpose; importing again changes nothing; an opt-out is never
cleared by an import (only ``opt_in`` clears it).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Select, bindparam, func, insert, update
from sqlmodel import Session, select

from .errors import InputError, NotFoundError
from .models import Contact, ContactGroup, ContactGroupMember
from .phones import is_mobile, mask_phone, mobile_e164_pattern, normalize_mobile, normalize_phone
from .sms.encoding import strip_diacritics
from .timeutil import as_utc, utcnow
from .validation import csv_lines, refuse_hidden

PHONE_HEADERS = {"phone", "phone number", "mobile", "so dien thoai", "sdt", "so dt", "dien thoai", "di dong",
                 "so di dong"}
NAME_HEADERS = {"name", "full name", "ho ten", "ho va ten", "ten"}
VILLAGE_HEADERS = {"village", "thon", "thon ban", "ban", "to dan pho", "xom", "ap", "thon xom", "thon to"}
GROUPS_HEADERS = {"groups", "group", "nhom"}
REASON_HEADERS = {"reason", "ly do"}
COLUMNS = {"phone": PHONE_HEADERS, "name": NAME_HEADERS, "village": VILLAGE_HEADERS, "groups": GROUPS_HEADERS,
           "reason": REASON_HEADERS}


def _header_key(text: str) -> str:
    plain = strip_diacritics(unicodedata.normalize("NFC", text or "")).strip().lower()
    return " ".join(re.sub(r"[_/,.()\-]", " ", plain).split())


def _clean(text: str | None) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def _split_groups(text: str | None) -> list[str]:
    return [name for name in (_clean(part) for part in (text or "").split(";")) if name]


# --------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------

def read_text(path: Path) -> str:
    source = str(path)
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError("không tìm thấy tệp / file not found", source=source) from exc
    except IsADirectoryError as exc:
        raise InputError("đây là thư mục, không phải tệp / this is a folder, not a file", source=source) from exc
    except UnicodeDecodeError as exc:
        raise InputError("tệp không phải UTF-8, hãy lưu dạng 'CSV UTF-8' / file is not UTF-8: save it as "
                         "'CSV UTF-8'", source=source) from exc


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class CsvTable:
    columns: dict[str, str]  # our column name -> header as written
    ignored: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line number, our column -> cell)


def read_csv_table(path: Path, text: str, wanted: tuple[str, ...]) -> CsvTable:
    """Rows keyed by our column names; line 1 is the header. Blank rows are dropped."""
    source = str(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("tệp trống hoặc thiếu dòng tiêu đề / empty file or no header line", source=source,
                         line=1)
    rows_in = csv_lines(text, _delimiter(lines[0]), source)
    _, header = next(rows_in)
    index: dict[str, int] = {}
    columns: dict[str, str] = {}
    ignored: list[str] = []
    for position, title in enumerate(header):
        key = _header_key(title)
        ours = next((name for name in wanted if key in COLUMNS[name]), None)
        if ours is None:
            if title.strip():
                ignored.append(title.strip())
            continue
        if ours in index:
            raise InputError(f"cột '{title}' bị lặp / column '{title}' appears twice", source=source, line=1)
        index[ours], columns[ours] = position, title
    if "phone" not in index:
        raise InputError("thiếu cột số điện thoại (phone / số điện thoại / sđt) / no phone column",
                         source=source, line=1)
    rows = []
    for line, cells in rows_in:
        if not any(cell.strip() for cell in cells):
            continue
        rows.append((line, {name: (cells[i] if i < len(cells) else "") for name, i in index.items()}))
    return CsvTable(columns=columns, ignored=ignored, rows=rows)


@dataclass
class ContactRow:
    phone: str  # E.164
    line: int  # first line it appears on
    name: str = ""
    village: str = ""
    groups: list[str] = field(default_factory=list)


@dataclass
class ContactsFile:
    source: str
    rows: list[ContactRow]
    problems: list[InputError]
    ignored_columns: list[str]
    merged: int  # rows folded into an earlier row with the same number


def read_contacts_csv(path: Path) -> ContactsFile:
    """Parse and check a contacts CSV. Bad rows are collected, not raised: the caller decides."""
    source = str(path)
    table = read_csv_table(path, read_text(path), ("phone", "name", "village", "groups"))
    by_phone: dict[str, ContactRow] = {}
    problems: list[InputError] = []
    merged = 0
    for line, cells in table.rows:
        try:
            phone = normalize_mobile(cells.get("phone", ""))
        except ValueError as exc:
            problems.append(InputError(str(exc), source=source, line=line, field=table.columns["phone"]))
            continue
        name, village = _clean(cells.get("name")), _clean(cells.get("village"))
        groups = _split_groups(cells.get("groups"))
        try:
            for name_text in (name, village, *groups):
                refuse_hidden(name_text, "tên/name")
        except ValueError as exc:
            problems.append(InputError(str(exc), source=source, line=line,
                                       field=table.columns.get("groups") or table.columns.get("name")))
            continue
        row = by_phone.get(phone)
        if row is None:
            by_phone[phone] = ContactRow(phone=phone, line=line, name=name, village=village, groups=groups)
            continue
        merged += 1
        row.name = row.name or name
        row.village = row.village or village
        row.groups += [g for g in groups if g not in row.groups]
    return ContactsFile(source=source, rows=list(by_phone.values()), problems=problems,
                        ignored_columns=table.ignored, merged=merged)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

@dataclass
class ImportCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    groups_created: list[str] = field(default_factory=list)


def get_contact(session: Session, phone: str) -> Contact | None:
    return session.exec(select(Contact).where(Contact.phone == normalize_phone(phone))).first()


def get_group(session: Session, name: str) -> ContactGroup:
    group = session.exec(select(ContactGroup).where(ContactGroup.name == _clean(name))).first()
    if group is None:
        raise NotFoundError(f"không có nhóm '{name}' / unknown group '{name}' "
                            "(xem/see 'broadcaster contacts groups')")
    return group


def _ensure_group(session: Session, name: str, cache: dict[str, ContactGroup], created: list[str]) -> ContactGroup:
    if name not in cache:
        try:
            refuse_hidden(name, "tên nhóm/group name")
        except ValueError as exc:
            raise InputError(str(exc), field="group") from None
        group = session.exec(select(ContactGroup).where(ContactGroup.name == name)).first()
        if group is None:
            group = ContactGroup(name=name)
            session.add(group)
            session.flush()
            created.append(name)
        cache[name] = group
    return cache[name]


_CHUNK = 500  # ids or numbers per IN (...) list: well under every database's parameter limit


def _chunks(values: list, size: int = _CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


@dataclass
class _Pending:
    """A contact as the import leaves it (read from the table, or new)."""

    id: int | None
    name: str
    village: str
    groups: set[int]
    changed: bool = False  # name or village to write


def import_contacts(session: Session, rows: list[ContactRow], extra_groups: list[str] = ()) -> ImportCounts:
    """Upsert by phone in the caller's transaction. Never removes a membership, never clears an opt-out.

    Set-based: the existing contacts and memberships are read in chunks, the outcome of every row is
    worked out in memory (rows in file order, as if applied one by one), and the new contacts, changes
    and memberships are written with one multi-row statement each — no ORM object per row.
    """
    session.flush()  # the statements below are Core ones: the ORM does not flush for them
    counts = ImportCounts()
    extra = [name for name in (_clean(g) for g in extra_groups) if name]
    groups: dict[str, ContactGroup] = {}
    wanted = [[*row.groups, *[g for g in extra if g not in row.groups]] for row in rows]
    for names in wanted:
        for name in names:
            _ensure_group(session, name, groups, counts.groups_created)
    contacts, members = Contact.__table__, ContactGroupMember.__table__
    known: dict[str, _Pending] = {}
    for phones in _chunks(sorted({row.phone for row in rows})):
        for contact_id, phone, name, village in session.execute(
                select(contacts.c.id, contacts.c.phone, contacts.c.name, contacts.c.village)
                .where(contacts.c.phone.in_(phones))).all():
            known[phone] = _Pending(contact_id, name, village, set())
    by_id = {entry.id: entry for entry in known.values()}
    for ids in _chunks(sorted(by_id)):
        for contact_id, group_id in session.execute(
                select(members.c.contact_id, members.c.group_id).where(members.c.contact_id.in_(ids))).all():
            by_id[contact_id].groups.add(group_id)
    new_members: list[tuple[str, int]] = []
    for row, names in zip(rows, wanted, strict=True):
        entry = known.get(row.phone)
        is_new = entry is None
        changed = False
        if is_new:
            entry = known[row.phone] = _Pending(None, row.name, row.village, set())
            counts.new += 1
        else:
            for key in ("name", "village"):
                value = getattr(row, key)
                if value and value != getattr(entry, key):
                    setattr(entry, key, value)
                    entry.changed = changed = True
        for name in names:
            group_id = groups[name].id
            if group_id not in entry.groups:
                entry.groups.add(group_id)
                new_members.append((row.phone, group_id))
                changed = True
        if not is_new:
            if changed:
                counts.updated += 1
            else:
                counts.unchanged += 1
    now = utcnow()
    created = [{"phone": phone, "name": e.name, "village": e.village, "opt_out_reason": "", "created_at": now}
               for phone, e in known.items() if e.id is None]
    if created:
        session.execute(insert(contacts), created)
        for phones in _chunks([row["phone"] for row in created]):
            for contact_id, phone in session.execute(
                    select(contacts.c.id, contacts.c.phone).where(contacts.c.phone.in_(phones))).all():
                known[phone].id = contact_id
    changes = [{"contact_id": e.id, "new_name": e.name, "new_village": e.village}
               for e in known.values() if e.changed and e.id is not None]
    if changes:
        session.execute(update(contacts).where(contacts.c.id == bindparam("contact_id"))
                        .values(name=bindparam("new_name"), village=bindparam("new_village")), changes)
    if new_members:
        session.execute(insert(members), [{"contact_id": known[phone].id, "group_id": group_id}
                                          for phone, group_id in new_members])
    session.expire_all()  # contacts loaded before the import are read again
    return counts


def opt_out(session: Session, phone: str, reason: str, when: datetime | None = None) -> tuple[Contact, bool]:
    """Mark a number as never to be sent to. Unknown numbers get a contact row, opted out.

    Returns (contact, changed); an earlier opt-out keeps its date and reason.
    """
    e164 = normalize_phone(phone)
    contact = session.exec(select(Contact).where(Contact.phone == e164)).first()
    if contact is None:
        contact = Contact(phone=e164)
    elif contact.opted_out_at is not None:
        return contact, False
    contact.opted_out_at = as_utc(when) if when else utcnow()
    contact.opt_out_reason = _clean(reason)
    session.add(contact)
    session.flush()
    return contact, True


def opt_in(session: Session, phone: str) -> tuple[Contact, bool]:
    """Clear an opt-out (the resident asked again to receive messages). Returns (contact, changed)."""
    e164 = normalize_phone(phone)
    contact = session.exec(select(Contact).where(Contact.phone == e164)).first()
    if contact is None:
        raise NotFoundError(f"không có số {mask_phone(e164)} trong danh bạ / number not in contacts")
    if contact.opted_out_at is None:
        return contact, False
    contact.opted_out_at = None
    contact.opt_out_reason = ""
    session.add(contact)
    session.flush()
    return contact, True


@dataclass
class OptOutRow:
    phone: str
    line: int
    reason: str = ""


@dataclass
class OptOutFile:
    source: str
    rows: list[OptOutRow]
    problems: list[InputError]


def read_optouts(path: Path) -> OptOutFile:
    """One number per line (``#`` starts a comment), or a CSV with a phone column (and maybe a reason)."""
    source = str(path)
    text = read_text(path)
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    header = [_header_key(cell) for cell in next(csv.reader([first], delimiter=_delimiter(first)), [])]
    entries: list[tuple[int, str, str]] = []
    if any(cell in PHONE_HEADERS for cell in header):
        table = read_csv_table(path, text, ("phone", "reason"))
        entries = [(line, cells.get("phone", ""), _clean(cells.get("reason"))) for line, cells in table.rows]
    else:
        for number, line in enumerate(lines, 1):
            value = line.split("#", 1)[0].strip()
            if value:
                entries.append((number, value, ""))
    rows: list[OptOutRow] = []
    problems: list[InputError] = []
    seen: set[str] = set()
    for line, raw, reason in entries:
        try:
            phone = normalize_phone(raw)
        except ValueError as exc:
            problems.append(InputError(str(exc), source=source, line=line))
            continue
        if phone not in seen:
            seen.add(phone)
            rows.append(OptOutRow(phone=phone, line=line, reason=reason))
    return OptOutFile(source=source, rows=rows, problems=problems)


@dataclass
class OptOutCounts:
    opted_out: int = 0  # known contacts now opted out
    created: int = 0  # numbers not in the contacts, added as opted out
    already: int = 0  # were opted out before


def import_optouts(session: Session, rows: list[OptOutRow], default_reason: str) -> OptOutCounts:
    counts = OptOutCounts()
    for row in rows:
        existed = session.exec(select(Contact.id).where(Contact.phone == row.phone)).first() is not None
        _, changed = opt_out(session, row.phone, row.reason or default_reason)
        if not changed:
            counts.already += 1
        elif existed:
            counts.opted_out += 1
        else:
            counts.created += 1
    return counts


# --------------------------------------------------------------------------
# Reading the tables
# --------------------------------------------------------------------------

def recipients_query(group_id: int) -> Select:
    """(contact id, phone) of a group's members who can be sent an SMS: a Vietnamese mobile number (the
    test runs in the database, see :func:`~broadcaster.phones.mobile_e164_pattern`), not opted out."""
    return (select(Contact.id, Contact.phone)
            .join(ContactGroupMember, ContactGroupMember.contact_id == Contact.id)
            .where(ContactGroupMember.group_id == group_id, Contact.opted_out_at.is_(None),
                   Contact.phone.regexp_match(mobile_e164_pattern())))


def recipients(session: Session, group_name: str) -> list[Contact]:
    """Members of a group who can be sent an SMS (:func:`recipients_query`), as contacts."""
    ids = recipients_query(get_group(session, group_name).id).with_only_columns(Contact.id)
    return list(session.exec(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id)).all())


def count_recipients(session: Session, group_name: str) -> int:
    people = recipients_query(get_group(session, group_name).id).subquery()
    return int(session.exec(select(func.count()).select_from(people)).one())


def list_contacts(session: Session, *, group: str | None = None, opted_out: bool | None = None) -> list[Contact]:
    query = select(Contact)
    if group:
        found = get_group(session, group)
        query = query.join(ContactGroupMember, ContactGroupMember.contact_id == Contact.id) \
            .where(ContactGroupMember.group_id == found.id)
    if opted_out is True:
        query = query.where(Contact.opted_out_at.is_not(None))
    elif opted_out is False:
        query = query.where(Contact.opted_out_at.is_(None))
    return list(session.exec(query.order_by(Contact.village, Contact.name, Contact.id)).all())


def contact_groups(session: Session) -> dict[int, list[str]]:
    """contact id -> names of its groups."""
    result: dict[int, list[str]] = {}
    rows = session.exec(select(ContactGroupMember.contact_id, ContactGroup.name)
                        .join(ContactGroup, ContactGroup.id == ContactGroupMember.group_id)
                        .order_by(ContactGroup.name)).all()
    for contact_id, name in rows:
        result.setdefault(contact_id, []).append(name)
    return result


@dataclass
class GroupSummary:
    name: str
    description: str
    members: int
    reachable: int  # mobile and not opted out
    opted_out: int


def group_summaries(session: Session) -> list[GroupSummary]:
    summaries = []
    for group in session.exec(select(ContactGroup).order_by(ContactGroup.name)).all():
        members = session.exec(
            select(Contact).join(ContactGroupMember, ContactGroupMember.contact_id == Contact.id)
            .where(ContactGroupMember.group_id == group.id)
        ).all()
        opted = sum(1 for c in members if c.opted_out_at is not None)
        reachable = sum(1 for c in members if c.opted_out_at is None and is_mobile(c.phone))
        summaries.append(GroupSummary(group.name, group.description, len(members), reachable, opted))
    return summaries


def count_contacts(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Contact)).one()


# --------------------------------------------------------------------------
# Correcting one contact
# --------------------------------------------------------------------------

def require_contact(session: Session, phone: str) -> Contact:
    contact = get_contact(session, phone)
    if contact is None:
        raise NotFoundError(f"không có số {mask_phone(normalize_phone(phone))} trong danh bạ / number not in "
                            "contacts")
    return contact


@dataclass
class ContactEdit:
    contact: Contact
    changes: list[tuple[str, str, str]]  # (field, before, after); numbers masked
    groups_added: list[str] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)
    groups_created: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.groups_added or self.groups_removed)


def edit_contact(session: Session, phone: str, *, new_phone: str | None = None, name: str | None = None,
                 village: str | None = None, add_groups: list[str] = (), remove_groups: list[str] = ()
                 ) -> ContactEdit:
    """Correct a contact and its group memberships in the caller's transaction.

    A group added that does not exist yet is created; removing from a group it is not in is an error,
    so a misspelt group name is noticed.
    """
    contact = require_contact(session, phone)
    edit = ContactEdit(contact, [])
    if new_phone is not None:
        try:
            e164 = normalize_mobile(new_phone)
        except ValueError as exc:
            raise InputError(str(exc), field="--phone") from exc
        if e164 != contact.phone:
            if session.exec(select(Contact.id).where(Contact.phone == e164)).first() is not None:
                raise InputError(f"số {mask_phone(e164)} đã có trong danh bạ / number already in contacts",
                                 field="--phone")
            edit.changes.append(("phone", mask_phone(contact.phone), mask_phone(e164)))
            contact.phone = e164
    for key, value in (("name", name), ("village", village)):
        if value is not None and _clean(value) != getattr(contact, key):
            edit.changes.append((key, getattr(contact, key), _clean(value)))
            setattr(contact, key, _clean(value))
    member_of = {group_id for group_id in session.exec(
        select(ContactGroupMember.group_id).where(ContactGroupMember.contact_id == contact.id)).all()}
    cache: dict[str, ContactGroup] = {}
    for group_name in (g for g in (_clean(n) for n in add_groups) if g):
        group = _ensure_group(session, group_name, cache, edit.groups_created)
        if group.id not in member_of:
            session.add(ContactGroupMember(contact_id=contact.id, group_id=group.id))
            member_of.add(group.id)
            edit.groups_added.append(group.name)
    for group_name in (g for g in (_clean(n) for n in remove_groups) if g):
        group = get_group(session, group_name)
        if group.id not in member_of:
            raise InputError(f"số này không ở nhóm '{group.name}' / this number is not in group '{group.name}'",
                             field="--remove-group")
        session.delete(session.get(ContactGroupMember, (contact.id, group.id)))
        member_of.discard(group.id)
        edit.groups_removed.append(group.name)
    session.add(contact)
    session.flush()
    return edit


def remove_contact(session: Session, phone: str) -> Contact:
    """Delete a contact (its memberships go with it; the delivery log keeps the number it was sent to).

    An opted-out number is never removed: its row is what stops a later import from messaging it again.
    """
    contact = require_contact(session, phone)
    if contact.opted_out_at is not None:
        raise InputError(f"số {mask_phone(contact.phone)} đã từ chối nhận tin; giữ lại để không bao giờ gửi nữa "
                         "(nhập lại danh bạ sẽ không gửi cho số này) / this number opted out: it is kept so that "
                         "no later import ever messages it")
    session.delete(contact)
    session.flush()
    return contact
