from governance.clustering.stored_reports import diff


def test_diff_names_new_gone_and_resized_clusters():
    older = {"clusters": [{"cluster_id": "a", "size": 10}, {"cluster_id": "b", "size": 5}]}
    newer = {"clusters": [{"cluster_id": "a", "size": 14}, {"cluster_id": "c", "size": 9}]}
    assert diff(older, newer) == {"new": ["c"], "gone": ["b"], "resized": {"a": 4}}


def test_identical_reports_have_no_changes():
    report = {"clusters": [{"cluster_id": "a", "size": 10}]}
    assert diff(report, report) == {"new": [], "gone": [], "resized": {}}
