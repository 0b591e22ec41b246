"""The loyalty domain: pure rules, ledger services and enrolment. No Flask import here."""
