"""Safe expressions for conditions and computed variables (allow-list, never ``eval``).

API (implemented by the expression module owner):
    compile_expr(text: str) -> Expression      # raises ExprError with a column offset
    Expression.source: str
    Expression.names: frozenset[str]           # dotted variable names it reads
    Expression.evaluate(scope: Mapping[str, Any]) -> Any
    lookup(scope, dotted_name) -> Any          # nested dict lookup; unknown -> None
"""
