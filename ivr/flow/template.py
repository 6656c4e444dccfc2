"""Prompt and value templates: ``{name}``, ``{name|format}``, ``{{``/``}}`` literals.

API (implemented by the template module owner):
    compile_template(text: str) -> Template    # raises TemplateError with a column offset
    Template.source: str
    Template.names: frozenset[str]             # dotted variable names it reads
    Template.is_constant: bool
    Template.render(scope: Mapping[str, Any], language: str = "en", speak: bool = True) -> str
        speak=True applies say-as formats for the language; speak=False renders plain values
        (for webhook bodies, transfer targets, set values).
"""
