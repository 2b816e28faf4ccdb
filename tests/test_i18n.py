from nexflow import i18n


def test_every_language_has_every_key_with_the_same_placeholders() -> None:
    import string

    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    for lang, catalogue in i18n.CATALOGUE.items():
        assert set(catalogue) == set(i18n.CATALOGUE["en"]), lang
        for key, text in catalogue.items():
            assert fields(text) == fields(i18n.CATALOGUE["en"][key]), (lang, key)


def test_pick_and_fallbacks() -> None:
    assert i18n.pick(None, "ru-RU") == "ru"
    assert i18n.pick("en", "ru") == "en"  # the user's /lang wins over the platform's
    assert i18n.pick(None, "de") == "en"
    assert i18n.pick(None, None) == "en"
    assert i18n.t("xx", "new") == "Started a new conversation."
    assert i18n.t("ru", "rate_limited", wait="3").endswith("3 с.")
