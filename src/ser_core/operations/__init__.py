"""Operations: the checks behind `ser doctor`."""
