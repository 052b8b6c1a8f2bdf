"""placeholder"""
backend = None


def routes():
    return []
