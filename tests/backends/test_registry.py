"""Third-party backends register through the `seapo.backends` entry points: no edits to seapo."""

import textwrap

from seapo.backends import BACKENDS, GenerationRequest, make_backend
from seapo.inject.pipeline import InjectConfig

PLUGIN = '''
from seapo.backends import BackendConfig, Completion, Generation, GenerationBackend


class EchoConfig(BackendConfig):
    name: str = "test-echo"
    suffix: str = "!"


class EchoBackend(GenerationBackend):
    """Answers with the last message, shouted."""

    config_class = EchoConfig

    def _load(self):
        self.loads = getattr(self, "loads", 0) + 1

    def _generate(self, requests, progress):
        return [Generation([Completion((r.prompt or r.messages[-1]["content"]).upper() + self.config.suffix, "stop")])
                for r in requests]
'''


def test_a_backend_installed_as_an_entry_point_is_found_by_name(tmp_path, monkeypatch):
    (tmp_path / "seapo_echo_plugin.py").write_text(PLUGIN)
    info = tmp_path / "seapo_echo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seapo-echo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [seapo.backends]
        test-echo = seapo_echo_plugin:EchoBackend
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    backend = make_backend({"name": "test-echo", "suffix": "?!"})
    assert backend.name == "test-echo" and not backend.loaded
    out = backend.generate([GenerationRequest(prompt="hello")])
    assert out[0].text == "HELLO?!" and backend.loaded and backend.loads == 1
    assert "test-echo" in BACKENDS.names()
    # its own settings are validated by its own config class, inside any config that names it
    config = InjectConfig(llm={"backend": {"name": "test-echo", "model": "x", "suffix": "."}})
    assert type(config.llm.backend).__name__ == "EchoConfig" and config.llm.backend.suffix == "."
    assert InjectConfig.model_validate(config.model_dump()).llm.backend.suffix == "."
