"""The answer policy's text rules, without a bundle (fast): what counts as words of a question, and
which earlier turns a follow-up may refer to."""

from __future__ import annotations

from pipeline.answer.answerability import plain_question
from pipeline.answer.conversation import IDK, answered_user_turns, parse_history


def test_redaction_markers_with_their_key_and_emails_are_no_words_of_the_question():
    assert plain_question("How do I restore SQLite? token=[REDACTED:secret]") == "How do I restore SQLite?"
    assert plain_question("restore after a node fails (mail [REDACTED:email])") == "restore after a node fails (mail )"
    assert plain_question("restore it (ask oncall.engineer@example.org)") == "restore it (ask )"
    assert plain_question("[REDACTED:token]") == "[REDACTED:token]"  # nothing left: the text itself


def test_a_question_answered_i_dont_know_is_not_what_a_follow_up_refers_to():
    turns = parse_history(
        [
            {"role": "user", "content": "How do I back up Argo CD with Velero?"},
            {"role": "assistant", "content": f"Answering: How do I back up Argo CD with Velero?\n{IDK}"},
            {"role": "user", "content": "podman build hangs at a useradd step"},
            {
                "role": "assistant",
                "content": "Add --no-log-init [build-hangs]",
                "citations": [{"atom_id": "build-hangs"}],
            },
        ]
    )
    assert [t.unanswered for t in turns if t.role == "assistant"] == [True, False]
    assert answered_user_turns(turns) == ["podman build hangs at a useradd step"]
    flagged = parse_history(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "…", "uncertain": True}]
    )
    assert answered_user_turns(flagged) == ["q"]  # none answered: all of them


def test_none_answered_only_when_every_user_turn_got_i_dont_know():
    from pipeline.answer.conversation import none_answered

    idk = {"role": "assistant", "content": IDK}
    ok = {"role": "assistant", "content": "Add --no-log-init [build-hangs]"}
    assert none_answered(parse_history([{"role": "user", "content": "q1"}, idk]))
    assert none_answered(
        parse_history([{"role": "user", "content": "q1"}, idk, {"role": "user", "content": "q2"}, idk])
    )
    assert not none_answered(
        parse_history([{"role": "user", "content": "q1"}, idk, {"role": "user", "content": "q2"}, ok])
    )
    assert not none_answered(parse_history([{"role": "user", "content": "q1"}]))  # no reply yet: not refused
    assert not none_answered([])
