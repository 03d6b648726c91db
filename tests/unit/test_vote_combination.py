"""How an image's pixel vote and the vote of the text read in it combine (vote.combine_votes)."""
import pytest

from governance.moderation.vote import Vote, combine_votes


def vote(label, score, *others):
    labels = [(label, score), *others] if label else []
    return Vote(label=label, score=score, labels=labels, margin=score - (others[0][1] if others else 0.0))


def test_without_a_text_vote_the_pixels_decide_unchanged():
    pixels = vote("landscape", 0.7, ("city", 0.3))
    assert combine_votes(pixels, None) == (pixels, "image")
    assert combine_votes(pixels, Vote(label=None, score=0.0)) == (pixels, "image")


def test_a_text_vote_decides_when_the_pixels_name_no_label():
    text = vote("crypto_spam", 0.9, ("finance", 0.1))
    assert combine_votes(Vote(label=None, score=0.0), text) == (text, "text")


def test_the_stronger_vote_wins_and_the_loser_keeps_its_score_in_labels():
    combined, source = combine_votes(vote("landscape", 0.55, ("city", 0.45)), vote("crypto_spam", 0.8))
    assert (combined.label, source) == ("crypto_spam", "text")
    assert combined.labels == [("crypto_spam", 0.8), ("landscape", 0.55), ("city", 0.45)]
    assert combined.margin == pytest.approx(0.25)
    combined, source = combine_votes(vote("landscape", 0.9), vote("crypto_spam", 0.6))
    assert (combined.label, combined.score, source) == ("landscape", 0.9, "image")


def test_agreement_raises_the_score_by_noisy_or():
    combined, source = combine_votes(vote("crypto_spam", 0.6, ("landscape", 0.4)), vote("crypto_spam", 0.5))
    assert (combined.label, source) == ("crypto_spam", "both")
    assert combined.score == pytest.approx(0.8)  # 1 - 0.4 * 0.5: above either vote alone
    assert combined.margin == pytest.approx(0.4)


def test_a_tie_goes_to_the_pixels():
    combined, source = combine_votes(vote("zebra", 0.7), vote("apple", 0.7))
    assert (combined.label, source, combined.margin) == ("zebra", "image", 0.0)
