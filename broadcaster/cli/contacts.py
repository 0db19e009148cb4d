"""``contacts``: residents' phone numbers, groups and opt-outs.

Numbers are masked (``+84 91* *** 678``) in every table, JSON and message
unless ``--show-numbers`` is given.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import contacts
from ..errors import InputError
from ..phones import is_mobile, mask_phone
from .common import BroadcasterGroup, echo_changes, echo_json, echo_table, fmt_dt, get_app, json_option


@click.group("contacts", cls=BroadcasterGroup)
def contacts_group() -> None:
    """Danh bạ người dân / residents' phone numbers."""


def _report_problems(problems: list[InputError], skip: bool, total_good: int, *, can_skip: bool = True) -> None:
    """Every bad line on its own line (stderr), then a summary; refuse unless skipping."""
    for problem in problems:
        click.echo(f"{'Bỏ qua / skipped' if skip else 'Lỗi / Error'}: {problem}", err=True)
    if not problems:
        return
    if not skip:
        hint = (f"sửa tệp hoặc dùng --skip-invalid để nhập {total_good} dòng đúng / {len(problems)} bad rows, "
                f"nothing imported; fix the file or use --skip-invalid to import the {total_good} good ones"
                if can_skip else
                f"hãy sửa tệp / {len(problems)} bad rows, nothing imported; fix the file")
        raise InputError(f"{len(problems)} dòng lỗi, chưa nhập gì; {hint}")
    click.echo(f"Đã bỏ qua {len(problems)} dòng lỗi / skipped {len(problems)} bad rows", err=True)


@contacts_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--group", "groups", multiple=True,
              help="Thêm mọi số vào nhóm này (lặp lại được) / add every number to this group (repeatable).")
@click.option("--skip-invalid", is_flag=True,
              help="Nhập các dòng đúng, bỏ dòng lỗi / import the good rows, skip the bad ones.")
def contacts_import(file: Path, groups: tuple[str, ...], skip_invalid: bool) -> None:
    """Nhập danh bạ từ CSV / import contacts from a CSV.

    Columns: phone (số điện thoại / sđt), name (họ tên), village (thôn / bản),
    groups (nhóm, separated by ';'). Importing the same file again changes nothing.
    """
    parsed = contacts.read_contacts_csv(file)
    if parsed.ignored_columns:
        click.echo(f"Bỏ qua cột / ignored columns: {', '.join(parsed.ignored_columns)}", err=True)
    _report_problems(parsed.problems, skip_invalid, len(parsed.rows))
    with get_app().session() as session:
        counts = contacts.import_contacts(session, parsed.rows, list(groups))
    if parsed.merged:
        click.echo(f"Gộp {parsed.merged} dòng trùng số / merged {parsed.merged} rows with a repeated number")
    if counts.groups_created:
        click.echo(f"Nhóm mới / new groups: {', '.join(counts.groups_created)}")
    click.echo(f"{counts.new} mới / new, {counts.updated} cập nhật / updated, "
               f"{counts.unchanged} không đổi / unchanged")


@contacts_group.command("list")
@click.option("--group", default=None, help="Chỉ nhóm này / only this group.")
@click.option("--opted-out", is_flag=True, help="Chỉ người đã từ chối nhận tin / only those who opted out.")
@click.option("--show-numbers", is_flag=True, help="Hiện số đầy đủ / show full numbers (mặc định che / masked).")
@json_option
def contacts_list(group: str | None, opted_out: bool, show_numbers: bool, as_json: bool) -> None:
    """Liệt kê danh bạ (số bị che) / list contacts (numbers masked)."""
    app = get_app()
    tz = app.config.broadcaster.timezone
    with app.session() as session:
        rows = contacts.list_contacts(session, group=group, opted_out=True if opted_out else None)
        member_of = contacts.contact_groups(session)
    data = [
        {"phone": c.phone if show_numbers else mask_phone(c.phone), "name": c.name, "village": c.village,
         "groups": member_of.get(c.id, []), "mobile": is_mobile(c.phone),
         "opted_out": c.opted_out_at is not None, "opted_out_at": c.opted_out_at, "opt_out_reason": c.opt_out_reason}
        for c in rows
    ]
    if as_json:
        echo_json(data)
        return
    echo_table(["Số/phone", "Họ tên/name", "Thôn/village", "Nhóm/groups", "Từ chối/opted out"],
               ([d["phone"], d["name"], d["village"], "; ".join(d["groups"]),
                 f"{fmt_dt(d['opted_out_at'], tz)} {d['opt_out_reason']}".strip() if d["opted_out"] else ""]
                for d in data),
               title=f"Danh bạ / contacts ({len(data)})")


@contacts_group.command("opt-out")
@click.argument("phone")
@click.option("--reason", required=True, help="Lý do / reason (vd/e.g. 'gọi điện đề nghị dừng').")
def contacts_opt_out(phone: str, reason: str) -> None:
    """Không gửi tin cho số này nữa / never send to this number again."""
    with get_app().session() as session:
        contact, changed = contacts.opt_out(session, phone, reason)
        masked = mask_phone(contact.phone)
    if changed:
        click.echo(f"Đã ghi từ chối nhận tin / opted out: {masked}")
    else:
        click.echo(f"Số này đã từ chối từ trước / already opted out: {masked}")


@contacts_group.command("opt-in")
@click.argument("phone")
def contacts_opt_in(phone: str) -> None:
    """Nhận tin lại (khi người dân yêu cầu) / receive messages again (when the resident asks)."""
    with get_app().session() as session:
        contact, changed = contacts.opt_in(session, phone)
        masked = mask_phone(contact.phone)
    if changed:
        click.echo(f"Đã cho nhận tin lại / opted in: {masked}")
    else:
        click.echo(f"Số này vẫn đang nhận tin / not opted out: {masked}")


@contacts_group.command("import-optouts")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reason", default=None, help="Lý do ghi cho mọi số / reason recorded for every number.")
def contacts_import_optouts(file: Path, reason: str | None) -> None:
    """Nhập danh sách từ chối nhận tin (tất cả hoặc không) / import opt-outs, all-or-nothing.

    One number per line, or a CSV with a phone column (and optionally reason / lý do).
    Numbers not yet in the contacts are added as opted out, so they are never sent to.
    """
    parsed = contacts.read_optouts(file)
    _report_problems(parsed.problems, False, len(parsed.rows), can_skip=False)
    if not parsed.rows:
        raise InputError("không có số nào / no numbers in the file", source=str(file))
    with get_app().session() as session:
        counts = contacts.import_optouts(session, parsed.rows, reason or f"danh sách / list {file.name}")
    click.echo(f"{counts.opted_out} từ chối mới / newly opted out, {counts.created} số mới (đã từ chối) / "
               f"new numbers (opted out), {counts.already} đã từ chối từ trước / already opted out")


@contacts_group.command("edit")
@click.argument("phone")
@click.option("--phone", "new_phone", default=None, help="Số mới (sửa số gõ nhầm) / the corrected number.")
@click.option("--name", default=None, help="Họ tên / name.")
@click.option("--village", default=None, help="Thôn, bản / village.")
@click.option("--add-group", "add_groups", multiple=True,
              help="Thêm vào nhóm (lặp lại được; nhóm mới được tạo) / add to a group (repeatable; created if new).")
@click.option("--remove-group", "remove_groups", multiple=True,
              help="Bỏ khỏi nhóm (lặp lại được) / remove from a group (repeatable).")
def contacts_edit(phone: str, new_phone: str | None, name: str | None, village: str | None,
                  add_groups: tuple[str, ...], remove_groups: tuple[str, ...]) -> None:
    """Sửa một số trong danh bạ và nhóm của số đó / correct one contact and its groups."""
    with get_app().session() as session:
        edit = contacts.edit_contact(session, phone, new_phone=new_phone, name=name, village=village,
                                     add_groups=list(add_groups), remove_groups=list(remove_groups))
        masked = mask_phone(edit.contact.phone)
    if not edit.changed:
        click.echo(f"Không có gì thay đổi / nothing changed: {masked}")
        return
    click.echo(f"Đã sửa / contact edited: {masked}")
    echo_changes(edit.changes, {"phone": "số/phone", "name": "họ tên/name", "village": "thôn/village"})
    if edit.groups_created:
        click.echo(f"  nhóm mới / new groups: {', '.join(edit.groups_created)}")
    if edit.groups_added:
        click.echo(f"  thêm vào nhóm / added to: {', '.join(edit.groups_added)}")
    if edit.groups_removed:
        click.echo(f"  bỏ khỏi nhóm / removed from: {', '.join(edit.groups_removed)}")


@contacts_group.command("remove")
@click.argument("phone")
def contacts_remove(phone: str) -> None:
    """Xóa một số khỏi danh bạ (số đã từ chối thì giữ) / remove a contact (opted-out numbers are kept)."""
    with get_app().session() as session:
        contact = contacts.remove_contact(session, phone)
        masked = mask_phone(contact.phone)
    click.echo(f"Đã xóa khỏi danh bạ / contact removed: {masked}")


@contacts_group.command("groups")
@json_option
def contacts_groups(as_json: bool) -> None:
    """Các nhóm, số thành viên và số gửi được / groups with member and reachable counts."""
    with get_app().session() as session:
        summaries = contacts.group_summaries(session)
    data = [{"name": s.name, "members": s.members, "reachable": s.reachable, "opted_out": s.opted_out}
            for s in summaries]
    if as_json:
        echo_json(data)
        return
    echo_table(["Nhóm/group", "Thành viên/members", "Gửi được/reachable", "Từ chối/opted out"],
               ([d["name"], d["members"], d["reachable"], d["opted_out"]] for d in data),
               title="Nhóm / groups")


COMMANDS = [contacts_group]
