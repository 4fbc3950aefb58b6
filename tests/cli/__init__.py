"""Tests of the command line."""


def flat(text: str) -> str:
    """A usage error's text without the box and the line breaks typer draws around it."""
    for mark in "│╭╰─╮╯":
        text = text.replace(mark, " ")
    return " ".join(text.split())


def strict_json(text: str):
    """Parse ``text`` as strict JSON: NaN, Infinity and -Infinity are refused."""
    import json

    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)
