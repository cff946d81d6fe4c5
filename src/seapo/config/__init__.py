"""One config layer: every component's settings are a :class:`SeapoConfig` (pydantic), read the
same way from Python, YAML and the command line, and every CLI is generated from them."""

from seapo.config.base import SeapoConfig, check_template, one_of, set_dotted
from seapo.config.files import read_yaml_mapping, yaml_key_line

__all__ = ["SeapoConfig", "check_template", "one_of", "read_yaml_mapping", "set_dotted", "yaml_key_line"]
