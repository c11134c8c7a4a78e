import os
import unittest

from hello import greet


class GreetTest(unittest.TestCase):
    def test_greets_by_name(self) -> None:
        self.assertTrue(greet("Ada").endswith(", Ada!"))

    def test_uses_the_greeting_from_the_environment(self) -> None:
        self.assertTrue(greet("Ada").startswith(os.environ.get("GREETING", "Hello")))

    def test_blank_name_greets_the_world(self) -> None:
        self.assertTrue(greet("  ").endswith(", world!"))

    @unittest.skipUnless(os.environ.get("SLOW"), "set SLOW=1 to run")
    def test_slow(self) -> None:
        self.assertEqual(greet("x"), greet("x"))
