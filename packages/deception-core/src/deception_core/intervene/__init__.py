"""intervene"""
