"""The base of every HTML form: an uploaded file reaches file fields only.

Flask-WTF hands a form the request's files and fields together, so a file sent under
a text field's name (a tampered or broken client) would arrive in that field as a file
object, and every `.strip()` or length check after it would fail with a server error.
Here a text field sees the text sent under its name and nothing else; a file field
still gets its upload.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import CombinedMultiDict, MultiDict


class WebForm(FlaskForm):
    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            data = super().wrap_formdata(form, formdata)
            if not isinstance(data, CombinedMultiDict):
                return data
            file_fields = {field.name for field in form if isinstance(field, FileField)}
            files = MultiDict([(name, upload)
                               for name, upload in request.files.items(multi=True)
                               if name in file_fields])
            return CombinedMultiDict((files, request.form))


T = TypeVar("T")


def filled(data: T | None) -> T:
    """The data of a field the form has validated as required (InputRequired).

    WTForms types every field's data as optional, because it is None until the form is
    validated; a view reads it only after `validate_on_submit()`, when a required field
    always holds a value.  This says so once (like `persisted.id_of` for row ids) instead
    of a `type: ignore` at every read, and fails loudly if a view ever reads first."""
    if data is None:
        raise ValueError("a required field is empty: validate the form before reading it")
    return data
