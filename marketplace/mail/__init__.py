"""Outgoing e-mail: messages built with the standard library, sent by SMTP or written as .eml files.
"""
