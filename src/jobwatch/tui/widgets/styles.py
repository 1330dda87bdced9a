"""Shared by the Line-API widgets: component styles resolved once per theme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style

if TYPE_CHECKING:
    from textual.widget import Widget

    _Base = Widget
else:
    _Base = object


class ComponentStyles(_Base):
    """Caches ``get_component_rich_style`` results: ``render_line`` asks for the same
    few styles on every row, and they only change with the theme or CSS.

    A plain mixin, not a Widget: Textual takes default CSS from the first DOM base
    class only, so the widget's own base (ScrollView) must stay the DOM parent.
    """

    def notify_style_update(self) -> None:
        self.__dict__["_style_cache"] = {}
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        cache: dict[str, Style] = self.__dict__.setdefault("_style_cache", {})
        style = cache.get(name)
        if style is None:
            style = cache[name] = self.get_component_rich_style(name, partial=True)
        return style
