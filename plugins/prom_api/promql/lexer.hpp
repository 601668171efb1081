// The PromQL lexer: turns a query into tokens with byte positions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace moni::promql {

enum class Tok {
  End,
  Error,
  Ident,
  Number,
  String,
  Duration,
  LParen,
  RParen,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  Comma,
  Assign,
  Colon,
  At,
  Add,
  Sub,
  Mul,
  Div,
  Mod,
  Pow,
  Eql,
  Neq,
  Gtr,
  Lss,
  Gte,
  Lte,
  EqlRegex,
  NeqRegex
};

struct Token {
  Tok type = Tok::End;
  size_t pos = 0, end = 0;
  std::string text;  // raw text; for strings the unquoted value; for errors the message
};

/// Tokenizes `q`. On a lexical error the last token has type Error.
std::vector<Token> lex(std::string_view q);
std::string describe(const Token& t);

}  // namespace moni::promql
