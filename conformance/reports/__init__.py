"""Traceable reports of a conformance run: results.json, junit.xml, allure-results, report.html."""
