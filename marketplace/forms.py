"""The base of every HTML form: an uploaded file reaches file fields only.

Flask-WTF hands a form the request's files and fields together, so a file sent under
a text field's name (a tampered or broken client) would arrive in that field as a file
object, and every `.strip()` or length check after it would fail with a server error.
Here a text field sees the text sent under its name and nothing else; a file field
still gets its upload.
"""

from __future__ import annotations

from typing import Any

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
