"""vcbench.registry: the one Registry type and "module:Attr" loader (issue 12, plan 3.2)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction

import pytest

from vcbench.errors import InputError, VcbenchError
from vcbench.registry import Registry, Spec, load_target

GROUP = "vcbench_test.things"

PLUGIN_MODULE = '''
from fractions import Fraction


class Half(Fraction):
    pass


class NotAFraction:
    pass
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed distribution on sys.path: one module plus a *.dist-info declaring entry points
    (listed out of order, one taking a built-in's name, one with a module that does not exist)."""
    site = tmp_path / "site"
    files = {
        "vcb_reg_plugin/__init__.py": PLUGIN_MODULE,
        "vcb_reg_plugin-1.2.dist-info/METADATA": "Metadata-Version: 2.1\nName: vcb-reg-plugin\nVersion: 1.2\n",
        "vcb_reg_plugin-1.2.dist-info/entry_points.txt": f"""\
[{GROUP}]
zeta = vcb_reg_plugin:Half
alpha = vcb_reg_plugin:NotAFraction
ghost = vcb_no_such_module_xyz:Ghost
frac = vcb_reg_plugin:Half
""",
    }
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    return site


def things(**kw) -> Registry:
    reg = Registry("thing", base=Fraction, entry_points=GROUP, **kw)
    reg["frac"] = "fractions:Fraction"
    reg["dec"] = Spec("dec", "decimal:Decimal")
    reg["tuple"] = "builtins:tuple"
    return reg


def test_load_target():
    assert load_target("fractions:Fraction") is Fraction
    assert load_target("os.path:join") is __import__("os.path").path.join
    assert load_target("json:JSONDecoder.decode") is json.JSONDecoder.decode  # dotted attribute path
    assert load_target("json") is json  # a bare module, as entry points allow
    with pytest.raises(ImportError):
        load_target("vcb_no_such_module_xyz:X")
    with pytest.raises(AttributeError):
        load_target("json:NoSuchThing")
    with pytest.raises(ValueError, match="not a 'module:attribute' target"):
        load_target(":X")


def test_order_is_registration_order_then_plugins_by_name(plugin):
    reg = things()
    assert reg.names() == ["frac", "dec", "tuple", "alpha", "ghost", "zeta"]
    assert list(reg) == reg.names() and len(reg) == 6
    reg["another"] = "fractions:Fraction"
    assert reg.names()[:4] == ["frac", "dec", "tuple", "another"]
    reg["frac"] = "fractions:Fraction"  # re-registering keeps the place
    assert reg.names()[0] == "frac"


def test_entry_points_come_from_the_distribution(plugin):
    reg = things()
    assert reg["zeta"] == Spec("zeta", "vcb_reg_plugin:Half", origin="vcb-reg-plugin 1.2")
    assert "zeta" in reg and "nope" not in reg and 3 not in reg
    half = reg.load("zeta")
    assert half.__name__ == "Half" and issubclass(half, Fraction)
    assert reg.create("zeta", 1, 2) == Fraction(1, 2)
    assert Registry("thing").names() == []  # no group: no plug-ins
    assert Registry("thing", entry_points=GROUP).names() == ["alpha", "frac", "ghost", "zeta"]


def test_a_builtin_wins_over_a_plugin_of_the_same_name(plugin, caplog):
    reg = things()
    with caplog.at_level(logging.WARNING, logger="vcbench.registry"):
        names = reg.names()
    assert names.count("frac") == 1
    assert reg["frac"].origin == "built-in" and reg.load("frac") is Fraction
    assert "ignoring thing 'frac' from vcb-reg-plugin 1.2" in caplog.text
    assert "already taken by fractions:Fraction" in caplog.text
    caplog.clear()
    reg["frac"] = "vcb_reg_plugin:Half"  # the same target declared twice is no conflict
    with caplog.at_level(logging.WARNING, logger="vcbench.registry"):
        reg.names()
    assert "frac" not in caplog.text


def test_string_coercion_and_spec_checks():
    @dataclass(frozen=True)
    class Info(Spec):
        higher_is_better: bool = True

    reg: Registry[Info] = Registry("metric", Info)
    reg["psnr"] = "fractions:Fraction"
    assert reg["psnr"] == Info("psnr", "fractions:Fraction") and reg["psnr"].origin == "built-in"
    assert reg.add(Info("lpips", "decimal:Decimal", False)).higher_is_better is False
    with pytest.raises(ValueError, match="named 'ssim' registered under 'x'"):
        reg["x"] = Info("ssim", "a:b")
    with pytest.raises(TypeError, match="holds Info records"):
        reg["x"] = Spec("x", "a:b")

    @dataclass(frozen=True)
    class Strict(Spec):
        direction: str = ""
        needs: tuple = ()

        def __post_init__(self):
            if not self.direction:
                raise TypeError("a direction is required")

    strict: Registry[Strict] = Registry("metric", Strict)
    with pytest.raises(TypeError, match="needs a Strict for 'fid', not only a target string"):
        strict["fid"] = "m:FID"
    with pytest.raises(TypeError, match="must subclass vcbench.registry.Spec"):
        Registry("thing", dict)  # type: ignore[arg-type]


def test_monkeypatch_setitem_and_undo(monkeypatch):
    reg = things()
    monkeypatch.setitem(reg, "frac", "decimal:Decimal")
    monkeypatch.setitem(reg, "new", "fractions:Fraction")
    assert reg["frac"].target == "decimal:Decimal" and "new" in reg
    monkeypatch.undo()
    assert reg["frac"].target == "fractions:Fraction" and "new" not in reg
    with pytest.raises(KeyError):
        del reg["never"]


def test_unknown_name_default_message_and_hook():
    reg = things()
    with pytest.raises(InputError) as info:
        reg.spec("nope")
    assert str(info.value) == "unknown thing 'nope'; valid things: frac, dec, tuple."
    with pytest.raises(KeyError):
        reg["nope"]

    def unknown(name, names):
        return InputError(f"unknown metric(s): {name}", hint=f"choose from {', '.join(names)}")

    hooked = things(unknown=unknown)
    with pytest.raises(InputError) as info:
        hooked.load("nope")
    assert str(info.value) == "unknown metric(s): nope. choose from frac, dec, tuple."


def test_load_errors(plugin):
    reg = things()
    with pytest.raises(InputError) as info:
        reg.load("ghost")  # the module does not exist
    msg = str(info.value)
    assert msg.startswith("thing 'ghost' (vcb_no_such_module_xyz:Ghost, vcb-reg-plugin 1.2) cannot be loaded: "
                          "ModuleNotFoundError:")
    assert "\n" not in msg
    with pytest.raises(InputError, match=r"vcb_reg_plugin:NotAFraction is not a fractions.Fraction subclass"):
        reg.load("alpha")  # the wrong base class
    with pytest.raises(InputError, match="builtins:tuple is not a fractions.Fraction subclass"):
        reg.load("tuple")
    reg["broken"] = "fractions:NoSuchClass"
    with pytest.raises(InputError, match="AttributeError"):
        reg.load("broken")

    seen = []

    def load_error(spec, exc):
        seen.append((spec.name, type(exc)))
        return VcbenchError(f"model {spec.name!r} cannot be loaded", hint="install what it needs")

    hooked = things(load_error=load_error)
    with pytest.raises(VcbenchError, match="model 'dec' cannot be loaded. install what it needs."):
        hooked.load("dec")  # Decimal is no Fraction subclass
    assert seen == [("dec", TypeError)]


def test_load_is_cached_until_the_name_is_registered_again():
    reg = Registry("thing")
    reg["a"] = "fractions:Fraction"
    assert reg.load("a") is Fraction and reg.load("a") is Fraction
    reg["a"] = Spec("a", obj=int)  # an object registered in code, no import
    assert reg.load("a") is int and reg.create("a", "7") == 7
    reg["a"] = "decimal:Decimal"
    assert reg.load("a").__name__ == "Decimal"


def test_the_registry_imports_no_torch():
    code = ("import sys; import vcbench.registry; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('vcbench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['vcbench', 'vcbench.errors', 'vcbench.registry']"
