from django.db import models


class Seat(models.Model):
    number = models.IntegerField()
    holder = models.CharField(max_length=100, null=True)


class Booking(models.Model):
    seat = models.ForeignKey(Seat, on_delete=models.CASCADE)
    customer = models.CharField(max_length=100)
