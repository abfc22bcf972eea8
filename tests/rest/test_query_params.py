"""Query strings become registry parameters: list-typed ones take repeats and commas."""

from __future__ import annotations

from mailroom.frontends.rest.app import list_params, query_params
from mailroom.registry import Context, MethodSpec
from mailroom.registry._access import Public
from mailroom.registry._spec import build_spec


async def _method(ctx: Context, ids: list[str] | None = None, q: str = "", limit: int = 50) -> None:
    return None


def spec() -> MethodSpec:
    return build_spec("toy.things.list", _method, api="toy", access=Public())


def test_list_parameters_are_found_from_the_types() -> None:
    assert list_params(spec()) == frozenset({"ids"})


def test_repeats_and_commas_make_lists_other_repeats_keep_the_last_value() -> None:
    lists = list_params(spec())
    assert query_params(lists, b"ids=a,b&ids=c&q=x&q=y&limit=5") == {
        "ids": ["a", "b", "c"],
        "q": "y",
        "limit": "5",
    }
    assert query_params(lists, b"ids=&q=") == {"ids": [], "q": ""}
    assert query_params(lists, b"q=caf%C3%A9+au+lait&ids=%2C,a") == {"q": "café au lait", "ids": ["a"]}


def test_an_unknown_parameter_is_passed_on_for_the_runner_to_refuse() -> None:
    assert query_params(frozenset(), b"colour=red") == {"colour": "red"}
