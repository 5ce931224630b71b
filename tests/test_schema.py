import jsonschema
import pytest

from elcrec.schema import describe, key_path

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "download": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"retries": {"type": "integer", "description": "extra attempts\n  on errors"}},
        },
        "datasets": {"type": "array", "items": {"type": "object", "properties": {"sha256": {"type": "string"}}}},
        "seeds": {"type": "array"},
    },
}


def error_for(instance) -> jsonschema.ValidationError:
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.Draft202012Validator(SCHEMA).validate(instance)
    return caught.value


def test_unknown_top_level_key_names_the_closest_known_one_and_the_allowed_keys():
    assert describe(error_for({"downlaod": {}})) == (
        "config: an unknown key 'downlaod' (did you mean 'download'?); allowed here: datasets, download, seeds"
    )


def test_unknown_keys_without_a_close_match_are_listed_plainly():
    message = describe(error_for({"download": {"zzz": 1, "retires": 2}}), "dataset registry")
    assert message == (
        "dataset registry download: unknown keys 'retires' (did you mean 'retries'?), 'zzz'; allowed here: retries"
    )


def test_wrong_type_names_the_path_and_the_key_s_description_on_one_line():
    assert describe(error_for({"download": {"retries": "three"}})) == (
        "config download.retries: 'three' is not of type 'integer' (extra attempts on errors)"
    )
    message = describe(error_for({"datasets": [{}, {"sha256": 0}]}))
    assert message == "config datasets[1].sha256: 0 is not of type 'string'"


def test_key_path_reads_as_the_yaml_does():
    assert key_path(["datasets", "sports", "sources", 0, "sha256"]) == "datasets.sports.sources[0].sha256"
    assert key_path([]) == ""
